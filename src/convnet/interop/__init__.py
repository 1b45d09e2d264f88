"""Interoperability with other frameworks' files — the only place that knows NCHW/OIHW.

* :mod:`convnet.interop.onnx` — ``load(path) -> Net`` (import) and ``save(net, path)`` (export).

The format libraries (``onnx``, ``onnxruntime``) are optional: install ``convnet[onnx]``.
``import convnet`` never imports this package; importing it does not import ``onnx``.
"""
