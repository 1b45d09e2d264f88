"""The compiled Winograd tile transforms (``ops/kernels/winograd.py``) equal the Kronecker-GEMM
path they replace (the oracle kept in ``ops/fast/winograd.py``), and both equal the float64
definition, block by block: forward with bias, data gradient and weight gradient, F(2,3) and
F(4,3), uneven tiles, asymmetric padding, non-square maps, blocks of one tile row."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.ops import kernels
from convnet.ops import reference as R
from convnet.ops.fast import winograd as W
from convnet.ops.kernels import winograd as K

pytest.importorskip("numba")


def _both(fn, monkeypatch):
    monkeypatch.setattr(kernels, "enabled", lambda: False)
    slow = fn()
    monkeypatch.setattr(kernels, "enabled", lambda: True)
    fast = fn()
    return slow, fast


def _case(rng, n, h, w, c, k, dtype):
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    wt = rng.standard_normal((3, 3, c, k)).astype(dtype)
    return x, wt


def _out_hw(h, w, pads):
    return h + sum(pads[0]) - 2, w + sum(pads[1]) - 2


def _close(got, want, dtype, m):
    tol = {np.float64: 1e-11, np.float32: 1e-4 if m == 4 else 1e-5}[dtype]
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(np.abs(want).max(), 1e-30))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("shape, pads", [
    ((2, 9, 11, 5, 7), ((1, 1), (1, 1))),
    ((3, 8, 6, 16, 8), ((0, 2), (2, 0))),
    ((1, 13, 5, 3, 4), ((2, 1), (0, 1))),
])
@pytest.mark.parametrize("workspace", [None, 1])  # 1 byte: blocks of one tile row
def test_tiled_equals_kronecker_and_reference(shape, pads, m, dtype, workspace, monkeypatch, split):
    rng = np.random.default_rng(sum(shape) + m)
    n, h, w, c, k = shape
    x, wt = _case(rng, n, h, w, c, k, dtype)
    b = rng.standard_normal(k).astype(dtype)
    out_hw = _out_hw(h, w, pads)
    y0, y1 = _both(lambda: W.winograd_conv(x, wt, pads=pads, m=m, out_hw=out_hw, bias=b, workspace_bytes=workspace),
                   monkeypatch)
    want = R.conv2d(x, wt, b, pads=pads)
    _close(y1, want, dtype, m)
    _close(y0, want, dtype, m)
    assert y1.dtype == dtype and y1.shape == want.shape

    dy = rng.standard_normal(want.shape).astype(dtype)
    dx0, dx1 = _both(lambda: W.winograd_dx(dy, wt, pads=pads, m=m, in_hw=(h, w), workspace_bytes=workspace),
                     monkeypatch)
    dw0, dw1 = _both(lambda: W.winograd_dw(x, dy, pads=pads, m=m, workspace_bytes=workspace), monkeypatch)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, wt, dy))
    # float64 definitions of the gradients: dx[n,i,j,c] = Σ dy[n,p,q,k]·w[i-p+pt, j-q+pl, c, k], dw likewise
    dx_want = np.zeros_like(x64)
    dw_want = np.zeros_like(w64)
    xpad = np.pad(x64, ((0, 0), pads[0], pads[1], (0, 0)))
    dxpad = np.zeros_like(xpad)
    ho, wo = out_hw
    for a in range(3):
        for bb in range(3):
            win = xpad[:, a : a + ho, bb : bb + wo, :]
            dw_want[a, bb] = np.einsum("nhwc,nhwk->ck", win, dy64)
            dxpad[:, a : a + ho, bb : bb + wo, :] += np.einsum("nhwk,ck->nhwc", dy64, w64[a, bb])
    dx_want = dxpad[:, pads[0][0] : pads[0][0] + h, pads[1][0] : pads[1][0] + w, :]
    for got in (dx0, dx1):
        _close(got, dx_want, dtype, m)
    for got in (dw0, dw1):
        _close(got, dw_want, dtype, m)


@settings(max_examples=25, deadline=None)
@given(
    m=st.sampled_from([2, 4]),
    n=st.integers(1, 3),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    c=st.integers(1, 9),
    k=st.integers(1, 9),
    pads=st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
    block=st.sampled_from([1, 10**9]),
)
def test_tiled_forward_matches_definition_for_any_geometry(m, n, h, w, c, k, pads, block):
    pt, pb, pl, pr = pads
    pads = ((pt, pb), (pl, pr))
    ho, wo = _out_hw(h, w, pads)
    if ho < 1 or wo < 1:
        return
    rng = np.random.default_rng(n * 1000 + h * 100 + w * 10 + c + k)
    x, wt = _case(rng, n, h, w, c, k, np.float64)
    y = W.winograd_conv(x, wt, pads=pads, m=m, out_hw=(ho, wo), workspace_bytes=block)
    np.testing.assert_allclose(y, R.conv2d(x, wt, pads=pads), rtol=1e-10, atol=1e-10)


def test_blocks_cover_every_tile_row_once():
    assert W._blocks(3, (5, 7), 100, None) == [(0, 15)]  # 105 tiles: one block
    blocks = W._blocks(64, (8, 8), 36 * 128 * 4, 4 * 2**20)  # a 4 MiB cap: 28 tile rows a block
    assert blocks[0] == (0, 28) and blocks[-1][1] == 512
    assert all(b[1] == nxt[0] for b, nxt in zip(blocks, blocks[1:]))
    assert W._blocks(2, (4, 4), 10**9, 1) == [(i, i + 1) for i in range(8)]  # never less than one row


def test_transform_of_output_gradient_tiles_is_a_dy_a_transposed():
    """With ``mat = A`` (α × m) and tiles of m at stride m the input loop gives ``A · tile · Aᵀ``."""
    rng = np.random.default_rng(3)
    at, _, _ = W.winograd_matrices(4)
    dy = rng.standard_normal((2, 7, 6, 3))
    th, tw = 2, 2
    out = np.empty((36, 2 * th * tw, 3))
    K.transform_tiles(dy, at.T, step=4, pads=(0, 0), tiles_hw=(th, tw), out=out, bands=(0, 2 * th))
    padded = np.zeros((2, 8, 8, 3))
    padded[:, :7, :6] = dy
    for n in range(2):
        for ty in range(th):
            for tx in range(tw):
                tile = padded[n, 4 * ty : 4 * ty + 4, 4 * tx : 4 * tx + 4]
                want = np.einsum("ip,pqc,jq->ijc", at.T, tile, at.T).reshape(36, 3)
                np.testing.assert_allclose(out[:, (n * th + ty) * tw + tx], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("c, k", [(1, 1), (5, 7), (16, 3)])
def test_filter_transform_equals_kronecker_and_definition(c, k, rotated, m, dtype, monkeypatch, split):
    rng = np.random.default_rng(c * 31 + k + m)
    wt = rng.standard_normal((3, 3, c, k)).astype(dtype)
    slow, fast = _both(lambda: W.transform_filter(wt, m, rotated=rotated), monkeypatch)
    # the definition in float64: U[ξ,ν] = Σ_ab G[ξ,a] G[ν,b] w[a,b], of the rotated filter with C/K swapped
    _, g, _ = W.winograd_matrices(m)
    w64 = wt.astype(np.float64)
    if rotated:
        w64 = w64[::-1, ::-1].transpose(0, 1, 3, 2)
    want = np.einsum("xa,yb,abck->xyck", g, g, w64).reshape((m + 2) ** 2, *w64.shape[2:])
    assert fast.shape == slow.shape == want.shape and fast.dtype == dtype
    tol = {np.float64: 1e-13, np.float32: 1e-6}[dtype]
    np.testing.assert_allclose(fast, want, rtol=0, atol=tol * np.abs(want).max())
    np.testing.assert_allclose(slow, want, rtol=0, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("c, k", [(1, 1), (5, 7), (16, 3)])
def test_filter_gradient_is_the_transpose_of_the_filter_transform(c, k, m, dtype, monkeypatch, split):
    rng = np.random.default_rng(c * 17 + k + m)
    du = rng.standard_normal(((m + 2) ** 2, c, k)).astype(dtype)
    slow, fast = _both(lambda: W.filter_gradient(du, m), monkeypatch)
    _, g, _ = W.winograd_matrices(m)
    a = m + 2
    want = np.einsum("xa,yb,xyck->abck", g, g, du.astype(np.float64).reshape(a, a, c, k))
    tol = {np.float64: 1e-13, np.float32: 1e-6}[dtype]
    for got in (fast, slow):
        assert got.shape == (3, 3, c, k) and got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())
    # adjoint: <U(w), du> = <w, dw(du)> in float64
    w = rng.standard_normal((3, 3, c, k))
    monkeypatch.setattr(kernels, "enabled", lambda: True)
    lhs = np.vdot(W.transform_filter(w, m), du.astype(np.float64))
    rhs = np.vdot(w, W.filter_gradient(du.astype(np.float64), m))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))
