"""Locally connected 2-D layer (a CONV without parameter sharing)."""
from __future__ import annotations

import numpy as np
import pytest

from convnet.errors import ShapeError
from convnet.ops import reference as ref
from convnet.ops.conv import conv2d_forward
from convnet.ops.local import locally_connected2d_backward, locally_connected2d_forward
from oracle import assert_close, explicit_geometry, gradcheck, n, nchw_to_nhwc, nhwc_to_nchw, pair, t

# (shape, kernel, K, kwargs)
CASES = [
    ((2, 4, 4, 2), (3, 3), 2, dict()),
    ((1, 5, 6, 2), (3, 2), 3, dict(stride=(2, 1), padding=(1, 0))),
    ((2, 5, 5, 1), (2, 2), 2, dict(stride=1, padding=((0, 1), (1, 0)), dilation=(1, 2))),
    ((1, 6, 5, 3), (3, 3), 2, dict(stride=2, fit="crop")),
    ((1, 6, 6, 2), (2, 2), 1, dict(stride=2, padding=1)),
]
IDS = ["basic", "nonsquare", "asym_dilated", "crop", "padded"]


def make(case, rng, dtype=np.float64, bias=True):
    shape, (kh, kw), k, kwargs = case
    (ho, wo), pads = explicit_geometry(shape[1:3], (kh, kw), stride=kwargs.get("stride", 1),
                                       padding=kwargs.get("padding", 0), dilation=kwargs.get("dilation", 1),
                                       fit=kwargs.get("fit", "error"))
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((ho, wo, kh, kw, shape[3], k)).astype(dtype)
    b = rng.standard_normal((ho, wo, k)).astype(dtype) if bias else None
    return x, w, b, pads


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_reference(case, bias, rng):
    x, w, b, pads = make(case, rng, bias=bias)
    kwargs = case[3]
    y, _ = locally_connected2d_forward(x, w, b, **kwargs)
    expected = ref.locally_connected2d(x, w, b, stride=pair(kwargs.get("stride", 1)), pads=pads,
                                       dilation=pair(kwargs.get("dilation", 1)))
    assert_close(y, expected)
    y32, _ = locally_connected2d_forward(x.astype(np.float32), w.astype(np.float32),
                                         None if b is None else b.astype(np.float32), **kwargs)
    assert y32.dtype == np.float32
    assert_close(y32, expected, dtype=np.float32)


def test_shared_weights_reduce_to_conv2d(rng):
    """With the same filter at every position a locally connected layer is a convolution."""
    x = rng.standard_normal((2, 6, 5, 3))
    wc = rng.standard_normal((3, 2, 3, 4))
    bc = rng.standard_normal(4)
    yc, _ = conv2d_forward(x, wc, bc, stride=(1, 2), padding=1, fit="crop")
    ho, wo = yc.shape[1:3]
    w = np.broadcast_to(wc, (ho, wo, *wc.shape)).copy()
    b = np.broadcast_to(bc, (ho, wo, 4)).copy()
    y, _ = locally_connected2d_forward(x, w, b, stride=(1, 2), padding=1, fit="crop")
    assert_close(y, yc)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_full_jacobian(case, rng):
    x, w, b, _ = make(case, rng)
    kwargs = case[3]

    def f(x, w, b):
        return locally_connected2d_forward(x, w, b, **kwargs)[0]

    def vjp(dy, x, w, b):
        dx, dw, db = locally_connected2d_backward(dy, locally_connected2d_forward(x, w, b, **kwargs)[1])
        return {"x": dx, "w": dw, "b": db}

    gradcheck(f, vjp, {"x": x[:1], "w": w, "b": b}, rng=rng, mode="full", max_full=10_000)


def test_backward_projection_larger(rng):
    case = ((3, 9, 8, 3), (3, 3), 4, dict(stride=(2, 1), padding=1, fit="pad"))
    x, w, b, _ = make(case, rng)
    kwargs = case[3]
    gradcheck(lambda x, w, b: locally_connected2d_forward(x, w, b, **kwargs)[0],
              lambda dy, x, w, b: dict(zip("x w b".split(), locally_connected2d_backward(
                  dy, locally_connected2d_forward(x, w, b, **kwargs)[1]))),
              {"x": x, "w": w, "b": b}, rng=rng, mode="projection")


def test_no_bias_gives_none(rng):
    x, w, _, _ = make(CASES[0], rng, bias=False)
    y, cache = locally_connected2d_forward(x, w)
    _, _, db = locally_connected2d_backward(rng.standard_normal(y.shape), cache)
    assert db is None


def test_wrong_weight_shape_names_the_expected_shape(rng):
    x = rng.standard_normal((1, 4, 4, 2))
    with pytest.raises(ShapeError, match=r"\(2, 2, 3, 3, 2, 5\)"):
        locally_connected2d_forward(x, rng.standard_normal((3, 2, 3, 3, 2, 5)))
    with pytest.raises(ShapeError, match="received shape"):
        locally_connected2d_forward(x, rng.standard_normal((2, 2, 3, 3, 2, 5)), rng.standard_normal((2, 2, 4)))


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch_unfold_einsum(case, dtype, rng, torch):
    x, w, b, ((pt, pb), (pl, pr)) = make(case, rng, dtype)
    kwargs = case[3]
    y, cache = locally_connected2d_forward(x, w, b, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = locally_connected2d_backward(dy, cache)

    ho, wo, kh, kw, c, k = w.shape
    F = torch.nn.functional
    xt = t(torch, nhwc_to_nchw(x), grad=True)
    wt = t(torch, w, grad=True)
    bt = t(torch, b, grad=True)
    cols = F.unfold(F.pad(xt, (pl, pr, pt, pb)), (kh, kw), dilation=pair(kwargs.get("dilation", 1)),
                    stride=pair(kwargs.get("stride", 1)))  # (N, C·kh·kw, L), rows ordered (c, a, b)
    assert cols.shape[2] == ho * wo
    # our w[i, j, a, b, c, k] -> torch layout [l, c·kh·kw + a·kw + b, k]
    wl = wt.reshape(ho * wo, kh, kw, c, k).permute(0, 3, 1, 2, 4).reshape(ho * wo, c * kh * kw, k)
    yt = torch.einsum("nql,lqk->nlk", cols, wl).reshape(-1, ho, wo, k) + bt
    yt.backward(t(torch, dy))
    assert_close(y, n(yt), dtype=dtype, what="y")
    assert_close(dx, nchw_to_nhwc(n(xt.grad)), dtype=dtype, what="dx")
    assert_close(dw, n(wt.grad), dtype=dtype, what="dw")
    assert_close(db, n(bt.grad), dtype=dtype, what="db")
