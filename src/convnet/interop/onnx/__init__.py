"""ONNX models: ``load(path) -> Net`` reads one (importer.py), ``save(net, path)`` writes one (export.py).

* :func:`load` — an ONNX model (opsets 7-25) as a convnet :class:`~convnet.net.Net` with its
  weights, taking NHWC input; :func:`convert` also returns how its input and output relate to
  the ONNX tensors (:class:`Imported`).  Safe: protobuf parsing only, sizes checked before
  allocating, external data kept inside the model's folder (reader.py).
* :func:`save` — a net as an ONNX model (export.py).
* :class:`~convnet.interop.onnx.backend.ConvnetBackend` — an ``onnx.backend`` over convnet, for
  onnx's backend test suite (imports onnx when imported).

``onnx`` is imported inside the functions that need it, so this package imports without it.
"""
from .export import save
from .importer import Imported, convert, load

__all__ = ["load", "convert", "Imported", "save"]
