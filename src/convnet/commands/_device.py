"""The ``--device cpu|gpu`` option that ``train``, ``evaluate`` and ``predict`` share."""
from __future__ import annotations

DEVICE_HELP = ("where the net runs: cpu (NumPy) or gpu (CuPy on a CUDA GPU: pip install convnet[gpu]; "
               "cuda is accepted too); checkpoints do not depend on it (default: %(default)s)")


def add_device_option(parser) -> None:
    """Add ``--device`` to ``parser`` (or an argument group); the name is checked when the command
    runs (:func:`convnet.device.resolve_device`), so a missing GPU is one line and exit status 2."""
    parser.add_argument("--device", default="cpu", metavar="{cpu,gpu}", help=DEVICE_HELP)
