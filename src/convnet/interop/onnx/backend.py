"""An ``onnx.backend`` over convnet, so that onnx's backend test suite can run against the importer.

    >>> import onnx.backend.test                                         # doctest: +SKIP
    >>> globals().update(onnx.backend.test.BackendTest(ConvnetBackend, __name__).test_cases)

Its boundary is ONNX's: arrays in and out are NCHW (the importer's :class:`~.importer.Imported`
moves them to and from convnet's NHWC).  A convnet net has one data input, so the model's first
graph input is the data and every other input is bound, for that run, to the value given as a
constant — the weights, shapes and bounds of a node test (``Conv(x, W)``: ``W`` becomes the
convolution's weights).  A model that needs two data inputs (``Add(x, y)`` with ``y`` varying
over the batch) is refused by the importer, as in any other use.

``onnx`` is optional: without it this module still imports, and :meth:`ConvnetBackend.prepare`
raises the ConfigError that says how to install it.
"""
from __future__ import annotations

import numpy as np

from .importer import convert
from .reader import require_onnx

try:  # the backend base classes; onnx is an optional dependency
    from onnx import ModelProto, numpy_helper
    from onnx.backend.base import Backend, BackendRep
except ImportError:  # pragma: no cover - exercised only without onnx
    ModelProto = numpy_helper = None
    Backend = BackendRep = object

__all__ = ["ConvnetBackend", "ConvnetRep"]


class ConvnetRep(BackendRep):
    """A prepared model: imported (again) at each :meth:`run`, with that run's extra inputs as constants."""

    def __init__(self, model):
        self.model = model
        inits = {t.name for t in model.graph.initializer}
        self.input_names = [vi.name for vi in model.graph.input if vi.name not in inits]

    def run(self, inputs, **kwargs) -> tuple:
        if isinstance(inputs, dict):
            inputs = [inputs[name] for name in self.input_names]
        elif not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        if len(inputs) != len(self.input_names):
            raise ValueError(f"the model takes {len(self.input_names)} inputs {self.input_names}; received {len(inputs)}")
        model = ModelProto()
        model.CopyFrom(self.model)
        for name, value in zip(self.input_names[1:], inputs[1:]):
            model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        imported = convert(model, source=f"<backend model {model.graph.name or 'unnamed'}>")
        return (imported.run(np.asarray(inputs[0])),)


class ConvnetBackend(Backend):
    """convnet as an ONNX backend (CPU, NumPy)."""

    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs) -> ConvnetRep:
        require_onnx()
        if not cls.supports_device(device):
            raise ValueError(f"convnet runs on the CPU; received device {device!r}")
        return ConvnetRep(model)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"
