"""Subcommands of the ``convnet`` command line, one module each (see :mod:`convnet.cli`)."""
