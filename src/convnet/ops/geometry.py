"""Output-size arithmetic for convolution and pooling: the one place it lives.

For one spatial axis of size ``W``, a filter of extent ``F`` with dilation ``d``
(effective extent ``F' = d·(F-1) + 1``), stride ``S`` and zero padding ``P`` on
both sides, the notes give::

    W2 = (W - F' + 2P) / S + 1

Height and width are computed separately (height first, always), and the
padding before and after may differ (``"same"`` padding with an even total, or
``fit="pad"``).

When ``(W - F' + P_before + P_after)`` is not a multiple of ``S`` the neurons do
not "fit" symmetrically.  The notes list three answers, chosen by ``fit``:

* ``"error"`` (default): raise :class:`~convnet.errors.GeometryError` naming the
  layer, the input size, F, S, P and the fractional result;
* ``"crop"``: use ``floor`` — the last rows/columns that no window reaches are
  ignored (their gradient is zero);
* ``"pad"``: use ``ceil`` — zero rows/columns are added at the bottom/right so
  that one more window fits.

Example::

    >>> conv_geometry((7, 7), (3, 3), stride=2, padding=0).out_hw
    (3, 3)
    >>> conv_geometry((227, 227), (11, 11), stride=4, padding=0).out_hw
    (55, 55)
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

from ..errors import ConfigError, GeometryError

FITS = ("error", "crop", "pad")


@dataclass(frozen=True)
class AxisGeometry:
    """The geometry of one spatial axis.

    ``pad_before``/``pad_after`` are the zero rows actually added (``fit="pad"``
    already included); with ``fit="crop"`` the input rows past
    ``(out-1)·stride + effective_kernel - pad_before`` are simply never read.
    """

    size: int
    kernel: int
    stride: int
    dilation: int
    pad_before: int
    pad_after: int
    out: int
    #: zero rows/columns that ``fit="pad"`` added to ``pad_after`` (not asked for by the user)
    fit_extra: int = 0

    @property
    def effective_kernel(self) -> int:
        return self.dilation * (self.kernel - 1) + 1

    @property
    def padded_size(self) -> int:
        return self.size + self.pad_before + self.pad_after

    @property
    def used_size(self) -> int:
        """Rows of the padded input that some window reads."""
        return (self.out - 1) * self.stride + self.effective_kernel

    def tap_range(self, t: int) -> tuple[int, int, int]:
        """``(o0, o1, s0)``: the output positions ``o0 .. o1 - 1`` whose input position for tap ``t``,
        ``o·stride - pad_before + t·dilation``, is inside the axis (not in its padding); ``s0`` is
        that of ``o0``."""
        off = t * self.dilation - self.pad_before
        o0 = max(0, -(off // self.stride))  # ceil(-off / stride), at least 0
        o1 = min(self.out, (self.size - 1 - off) // self.stride + 1) if self.size - 1 - off >= 0 else 0
        return o0, max(o0, o1), o0 * self.stride + off


@dataclass(frozen=True)
class Geometry2D:
    """Height and width geometry of a 2-D sliding window (height first)."""

    height: AxisGeometry
    width: AxisGeometry

    @property
    def out_hw(self) -> tuple[int, int]:
        return (self.height.out, self.width.out)

    @property
    def kernel(self) -> tuple[int, int]:
        return (self.height.kernel, self.width.kernel)

    @property
    def stride(self) -> tuple[int, int]:
        return (self.height.stride, self.width.stride)

    @property
    def dilation(self) -> tuple[int, int]:
        return (self.height.dilation, self.width.dilation)

    @property
    def pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right))."""
        return ((self.height.pad_before, self.height.pad_after), (self.width.pad_before, self.width.pad_after))

    @property
    def has_padding(self) -> bool:
        return any(p for pair in self.pads for p in pair)


def is_int(value) -> bool:
    """True for Python and NumPy integers (not bools)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def positive_int(value, name: str) -> int:
    """Validate a positive integer hyperparameter (NumPy integers accepted)."""
    return _positive_int(value, name)


def _positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"Argument `{name}` must be {what}; received {value!r}.")
    return int(value)


def as_pair(value, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)`` (height, width).  Validates each entry."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ConfigError(
                f"Argument `{name}` must be an int or a (height, width) pair; received {value!r}."
            )
        return (_positive_int(value[0], name, minimum=minimum), _positive_int(value[1], name, minimum=minimum))
    v = _positive_int(value, name, minimum=minimum)
    return (v, v)


def parse_padding(padding, name: str = "padding"):
    """Normalise a padding argument.

    Accepts ``"same"``, ``"valid"``, an int ``P``, a pair ``(Ph, Pw)`` or explicit
    ``((top, bottom), (left, right))``.  Returns ``"same"`` or
    ``((top, bottom), (left, right))``.
    """
    if isinstance(padding, str):
        p = padding.lower()
        if p == "same":
            return "same"
        if p == "valid":
            return ((0, 0), (0, 0))
        raise ConfigError(
            f"Argument `{name}` must be 'same', 'valid', an int, or a (height, width) pair; received {padding!r}."
        )
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(isinstance(p, (tuple, list)) for p in padding):
        (t, b), (l, r) = padding
        return (
            (_positive_int(t, name, minimum=0), _positive_int(b, name, minimum=0)),
            (_positive_int(l, name, minimum=0), _positive_int(r, name, minimum=0)),
        )
    ph, pw = as_pair(padding, name, minimum=0)
    return ((ph, ph), (pw, pw))


def check_fit(fit) -> str:
    if fit not in FITS:
        raise ConfigError(f"Argument `fit` must be one of {FITS}; received {fit!r}.")
    return fit


def axis_geometry(
    size: int,
    kernel: int,
    *,
    stride: int,
    dilation: int = 1,
    pad_before: int = 0,
    pad_after: int = 0,
    fit: str = "error",
    layer: str = "layer",
    axis: str = "height",
) -> AxisGeometry:
    """Output size along one axis, applying the ``fit`` policy (see module doc)."""
    eff = dilation * (kernel - 1) + 1
    span = size + pad_before + pad_after - eff
    pad_text = f"P={pad_before}" if pad_before == pad_after else f"P=({pad_before}, {pad_after})"
    dil_text = "" if dilation == 1 else f", dilation {dilation} (effective F={eff})"
    if span < 0:
        raise GeometryError(
            f"{layer}: the {axis} {size} with {pad_text} is smaller than the filter F={kernel}{dil_text}; "
            f"expected an input {axis} of at least {eff - pad_before - pad_after}."
        )
    q, r = divmod(span, stride)
    if r == 0:
        return AxisGeometry(size, kernel, stride, dilation, pad_before, pad_after, q + 1)
    if fit == "crop":
        return AxisGeometry(size, kernel, stride, dilation, pad_before, pad_after, q + 1)
    if fit == "pad":
        if (q + 1) * stride >= size + pad_before:
            # the extra window would read padding only: nothing fits there (as PyTorch's ceil_mode)
            return AxisGeometry(size, kernel, stride, dilation, pad_before, pad_after, q + 1)
        extra = stride - r
        return AxisGeometry(size, kernel, stride, dilation, pad_before, pad_after + extra, q + 2, extra)
    if fit != "error":
        check_fit(fit)
    value = span / stride + 1
    reason = (
        f"{layer}: {axis} {size} with F={kernel}, S={stride}, {pad_text}{dil_text} gives "
        f"({size} - {eff} + {pad_before + pad_after})/{stride} + 1 = {value:.4g}, which is not an integer; "
        f"expected ({axis} - F + 2P) to be divisible by S."
    )
    fields = dict(reason=reason, layer=layer, axis=axis, dropped=r, padded=stride - r,
                  side="bottom" if axis == "height" else "right")
    raise GeometryError(_with_advice(fields, crop="pass fit='crop'", pad="fit='pad'"), **fields)


def _with_advice(fields: dict, *, crop: str, pad: str) -> str:
    """The uneven-tiling message: the reason, then the two ways out in the caller's words."""
    return (
        f"{fields['reason']} Change the stride or padding, or {crop} (drop the last {fields['dropped']} "
        f"row(s)/column(s)) or {pad} (zero-pad {fields['padded']} more at the {fields['side']})."
    )


def reword_fit_advice(err: GeometryError, *, crop: str, pad: str) -> GeometryError:
    """``err`` with its advice in other words — ``crop``/``pad`` replace ``pass fit='crop'`` and
    ``fit='pad'`` (the pattern language says ``write CONV3-4/S2/FLOOR`` and ``CONV3-4/S2/CEIL``);
    ``err`` itself when it is not an uneven tiling."""
    if err.reason is None:
        return err
    fields = dict(reason=err.reason, layer=err.layer, axis=err.axis, dropped=err.dropped, padded=err.padded,
                  side=err.side)
    return GeometryError(_with_advice(fields, crop=crop, pad=pad), **fields)


def conv_geometry(
    input_hw,
    kernel,
    *,
    stride=1,
    padding=0,
    dilation=1,
    fit: str = "error",
    layer: str = "conv2d",
) -> Geometry2D:
    """Geometry of a 2-D sliding window over an ``(H, W)`` input.

    ``padding="same"`` chooses, per axis, ``out = ceil(size / stride)`` and splits
    the total zero padding with the smaller half on top/left (as TensorFlow and
    PyTorch do).
    """
    check_fit(fit)
    kh, kw = as_pair(kernel, "kernel_size")
    sh, sw = as_pair(stride, "stride")
    dh, dw = as_pair(dilation, "dilation")
    h, w = int(input_hw[0]), int(input_hw[1])
    pads = parse_padding(padding)
    if pads == "same":
        pads = (_same_pads(h, kh, sh, dh), _same_pads(w, kw, sw, dw))
        # when F < S no padding is needed and the last S - F rows are never read:
        # floor then gives exactly ceil(size / stride), the promise of "same"
        fit = "crop"
    (pt, pb), (pl, pr) = pads
    return Geometry2D(
        axis_geometry(h, kh, stride=sh, dilation=dh, pad_before=pt, pad_after=pb, fit=fit, layer=layer, axis="height"),
        axis_geometry(w, kw, stride=sw, dilation=dw, pad_before=pl, pad_after=pr, fit=fit, layer=layer, axis="width"),
    )


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    eff = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return (total // 2, total - total // 2)


def pool_geometry(input_hw, pool_size, *, stride=None, padding=0, dilation=1, fit: str = "error",
                  layer: str = "pool2d") -> Geometry2D:
    """Geometry of a pooling window; ``stride`` defaults to the pool size (S = F), ``dilation`` spaces
    the window's taps (ONNX MaxPool's ``dilations``; the effective extent is ``d·(F - 1) + 1``)."""
    pool_size = as_pair(pool_size, "pool_size")
    return conv_geometry(
        input_hw, pool_size, stride=pool_size if stride is None else stride, padding=padding, dilation=dilation,
        fit=fit, layer=layer,
    )


def conv_transpose_geometry(input_hw, kernel, *, stride=1, padding=0, output_padding=0, dilation=1,
                            layer: str = "conv_transpose2d") -> Geometry2D:
    """Geometry of a transposed convolution over an ``(H, W)`` input, as the geometry of the
    convolution whose data gradient it is: that convolution reads the *output* ``(Ho, Wo)`` and
    writes the input, so ``height.size`` is ``Ho`` and ``height.out`` is ``H``::

        Ho = (H - 1)·S - P_top - P_bottom + d·(F - 1) + 1 + output_padding

    ``padding`` is an int, a ``(Ph, Pw)`` pair or ``((top, bottom), (left, right))`` (it crops the
    full output; "same" is refused); ``output_padding`` (an int or a pair) adds rows at the
    bottom/right and must be smaller than the stride or the dilation (PyTorch's rule), so that it
    only says which of the input sizes that give ``H`` is meant.
    """
    kh, kw = as_pair(kernel, "kernel_size")
    sh, sw = as_pair(stride, "stride")
    dh, dw = as_pair(dilation, "dilation")
    oph, opw = as_pair(output_padding, "output_padding", minimum=0)
    pads = parse_padding(padding)
    if pads == "same":
        raise ConfigError(f"{layer}: padding='same' is not defined for a transposed convolution; give the pads "
                          f"explicitly, e.g. padding=((top, bottom), (left, right)).")
    h, w = int(input_hw[0]), int(input_hw[1])
    axes = []
    for name, size, k, s, d, op, (pb, pa) in (("height", h, kh, sh, dh, oph, pads[0]),
                                              ("width", w, kw, sw, dw, opw, pads[1])):
        if op >= max(s, d):
            raise ConfigError(
                f"{layer}: output_padding {op} along the {name} must be smaller than the stride {s} or the "
                f"dilation {d}; received output_padding={output_padding!r}."
            )
        eff = d * (k - 1) + 1
        out = (size - 1) * s - pb - pa + eff + op
        if out < 1:
            raise GeometryError(
                f"{layer}: the {name} {size} with F={k}, S={s}, P=({pb}, {pa}), output_padding {op} gives "
                f"({size} - 1)·{s} - {pb + pa} + {eff} + {op} = {out} output rows; expected at least 1 "
                f"(use less padding)."
            )
        axes.append(AxisGeometry(out, k, s, d, pb, pa, size))
    return Geometry2D(*axes)
