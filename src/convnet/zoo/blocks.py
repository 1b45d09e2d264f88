"""Building blocks with branches: residual blocks and the Inception module.

Each helper appends nodes to a :class:`~convnet.net.Net` and returns the name
of the block's output node.

* :func:`basic_block` — ResNet-18/34 (two 3×3 CONVs)::

      x -> conv1 3×3/s -> bn1 -> relu1 -> conv2 3×3 -> bn2 -+-> add -> relu2
      x -> (downsample.0 1×1/s -> downsample.1 BN, when the shape changes) -+

* :func:`bottleneck_block` — ResNet-50/101/152 (1×1, 3×3, 1×1 ×4), with the
  stride on the 3×3 as torchvision ("ResNet v1.5").
* :func:`inception` — GoogLeNet's module: 1×1 | 1×1 -> 3×3 | 1×1 -> 5×5 |
  3×3/1 max pool -> 1×1, concatenated along the channels.
* :class:`PadShortcut` — the parameter-free "option A" shortcut of the CIFAR
  ResNets: subsample by the stride and zero-pad the new channels.

CONVs in residual blocks have no bias (BN follows); strided layers floor
(``fit="crop"``) as PyTorch does.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..errors import ShapeError
from ..layers import BatchNorm, Conv2D, MaxPool2D, ReLU
from ..layers.accounting import Footprint, LayerCost, Window
from ..layers.base import Layer
from ..layers.merge import Add, Concat


def conv_bn(net, x: str, filters: int, kernel: int, *, stride: int = 1, prefix: str, conv: str, bn: str) -> str:
    """``conv (no bias, padding (F-1)/2) -> BN``; returns the BN node name."""
    net.add(Conv2D(filters, kernel, stride=stride, padding=(kernel - 1) // 2, use_bias=False,
                   fit="crop" if stride > 1 else "error", name=f"{prefix}{conv}"), inputs=x)
    return net.add(BatchNorm(name=f"{prefix}{bn}"))


def _shortcut(net, x: str, in_channels: int, out_channels: int, stride: int, prefix: str, option: str) -> str:
    if stride == 1 and in_channels == out_channels:
        return x
    if option == "A":
        return net.add(PadShortcut(out_channels, stride=stride, name=f"{prefix}shortcut"), inputs=x)
    return conv_bn(net, x, out_channels, 1, stride=stride, prefix=prefix, conv="downsample.0", bn="downsample.1")


def basic_block(net, x: str, in_channels: int, planes: int, *, stride: int, prefix: str, option: str = "B") -> str:
    """Two 3×3 CONV-BN with a ReLU between, plus the shortcut, then ReLU."""
    y = conv_bn(net, x, planes, 3, stride=stride, prefix=prefix, conv="conv1", bn="bn1")
    net.add(ReLU(name=f"{prefix}relu1"))
    y = conv_bn(net, f"{prefix}relu1", planes, 3, prefix=prefix, conv="conv2", bn="bn2")
    s = _shortcut(net, x, in_channels, planes, stride, prefix, option)
    net.add(Add(name=f"{prefix}add"), inputs=[y, s])
    return net.add(ReLU(name=f"{prefix}relu2"))


def bottleneck_block(net, x: str, in_channels: int, planes: int, *, stride: int, prefix: str, expansion: int = 4) -> str:
    """1×1 (planes) -> 3×3/stride (planes) -> 1×1 (planes·4), each with BN, plus the shortcut, then ReLU."""
    conv_bn(net, x, planes, 1, prefix=prefix, conv="conv1", bn="bn1")
    net.add(ReLU(name=f"{prefix}relu1"))
    conv_bn(net, f"{prefix}relu1", planes, 3, stride=stride, prefix=prefix, conv="conv2", bn="bn2")
    net.add(ReLU(name=f"{prefix}relu2"))
    y = conv_bn(net, f"{prefix}relu2", planes * expansion, 1, prefix=prefix, conv="conv3", bn="bn3")
    s = _shortcut(net, x, in_channels, planes * expansion, stride, prefix, "B")
    net.add(Add(name=f"{prefix}add"), inputs=[y, s])
    return net.add(ReLU(name=f"{prefix}relu3"))


def inception(net, x: str, name: str, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int) -> str:
    """GoogLeNet's Inception module with Caffe's names (``inception_3a/1x1``, ``inception_3a/output``)."""
    p = f"{name}/"

    def conv_relu(inp, k, f, tag):
        net.add(Conv2D(k, f, padding=(f - 1) // 2, name=p + tag), inputs=inp)
        return net.add(ReLU(name=p + "relu_" + tag))

    b1 = conv_relu(x, c1, 1, "1x1")
    b2 = conv_relu(conv_relu(x, c3r, 1, "3x3_reduce"), c3, 3, "3x3")
    b3 = conv_relu(conv_relu(x, c5r, 1, "5x5_reduce"), c5, 5, "5x5")
    net.add(MaxPool2D(3, stride=1, padding=1, name=p + "pool"), inputs=x)
    b4 = conv_relu(p + "pool", pool_proj, 1, "pool_proj")
    return net.add(Concat(name=p + "output"), inputs=[b1, b2, b3, b4])


class PadShortcut(Layer):
    """Option-A shortcut (He et al. 2016, CIFAR): ``x[:, ::s, ::s, :]`` zero-padded to ``filters`` channels.

    Shape: ``(N, H, W, C) -> (N, ceil(H/s), ceil(W/s), filters)``, the new
    channels split evenly before and after the old ones.  No parameters.
    """

    kind = "SHORTCUT"
    name_prefix = "shortcut"
    output_private = True
    grad_private = True

    def __init__(self, filters: int, *, stride: int = 2, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.filters = int(filters)
        self.stride = int(stride)

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[2] > self.filters:
            raise ShapeError(
                f"{self.label} expects (H, W, C) with C <= {self.filters}; received shape {tuple(input_shape)}."
            )
        h, w, _ = input_shape
        s = self.stride
        return (-(-h // s), -(-w // s), self.filters)

    def _pads(self, c: int):
        extra = self.filters - c
        return extra // 2, extra - extra // 2

    def forward(self, x, *, train=False, keep_cache=True):
        self._check_input(x, 4)
        xp = get_array_module(x)
        s = self.stride
        before, _ = self._pads(x.shape[3])
        sub = x[:, ::s, ::s, :]
        y = xp.zeros((*sub.shape[:3], self.filters), dtype=x.dtype)  # one pass; np.pad made three
        y[..., before : before + x.shape[3]] = sub
        self._cache = tuple(x.shape) if keep_cache else None
        return y

    def cost(self, input_shapes, output_shape):
        """No parameters; a 1×1 window of stride s for the receptive field."""
        return LayerCost(window=Window((1, 1), (self.stride, self.stride)))

    def footprint(self, input_shapes, output_shape, *, batch, itemsize, train):
        """Keeps only the input shape; the padded output is its one allocation."""
        return Footprint()

    def backward(self, dy):
        shape = self._take_cache()
        xp = get_array_module(dy)
        before, _ = self._pads(shape[3])
        dx = xp.zeros(shape, dtype=dy.dtype)
        s = self.stride
        dx[:, ::s, ::s, :] = dy[..., before : before + shape[3]]
        return dx
