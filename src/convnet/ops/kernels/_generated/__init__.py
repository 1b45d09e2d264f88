"""Code written by generators, not by hand: ``direct_conv.py`` by :mod:`convnet.ops.kernels.direct_gen`
(``python -m convnet.ops.kernels.direct_gen``; a test checks the file is current)."""
