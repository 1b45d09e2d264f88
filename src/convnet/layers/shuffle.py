"""``ChannelShuffle``: ShuffleNet's channel permutation between grouped convolutions."""
from __future__ import annotations


from ..errors import ShapeError
from ..ops.reshape import channel_shuffle_backward, channel_shuffle_forward, check_groups
from .accounting import Footprint, LayerCost, elementwise_cost
from .base import Layer
from .spelling import Spelling


class ChannelShuffle(Layer):
    """Shuffle the channels (last axis) in ``groups`` groups: ``y[..., i·g + j] = x[..., j·(C/g) + i]``
    (ShuffleNet; PyTorch's ``nn.ChannelShuffle``; ONNX exporters write it as Reshape → Transpose →
    Reshape).

    ``ChannelShuffle(groups)``; ``C`` must be divisible by ``groups``.  Shape unchanged; no
    parameters; keeps nothing for backward (the inverse permutation).  Pattern: ``SHUFFLE-g``.
    """

    kind = "SHUFFLE"
    name_prefix = "shuffle"
    output_private = True
    grad_private = True
    pattern_words = ("SHUFFLE", "CHANNELSHUFFLE")
    pattern_arg = True

    def __init__(self, groups, *, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.groups = check_groups(groups, op=type(self).__name__)

    def output_shape(self, input_shape):
        if len(input_shape) < 1 or input_shape[-1] % self.groups:
            raise ShapeError(f"{self.label}: the channels (last axis) of the per-sample input {tuple(input_shape)} "
                             f"must be divisible by groups={self.groups}.")
        return tuple(input_shape)

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x)
        y, cache = channel_shuffle_forward(x, groups=self.groups)
        self._cache = cache if keep_cache else None
        return y

    def backward(self, dy):
        return channel_shuffle_backward(dy, self._take_cache())

    def cost(self, input_shapes, output_shape) -> LayerCost:
        """No arithmetic: one copy forward, one backward."""
        return elementwise_cost(output_shape, 0, 0)

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train) -> Footprint:
        """Keeps nothing; no scratch (the transposed copy is the output)."""
        return Footprint()

    @classmethod
    def pattern_args(cls, s: Spelling) -> dict:
        """``SHUFFLE-g`` with ``g >= 1``."""
        if s.arg is None or not s.arg.isdigit() or int(s.arg) < 1:
            raise s.fail(f"{s.head!r} gives no number of groups", "SHUFFLE-<g>, e.g. SHUFFLE-4", at_arg=True)
        return {"groups": int(s.arg)}

    def to_pattern(self) -> str:
        return f"SHUFFLE-{self.groups}"
