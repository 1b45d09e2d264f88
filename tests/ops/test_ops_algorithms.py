"""Every convolution algorithm of the fast op agrees with the float64 reference and with the readable
op (:mod:`convnet.ops.conv`) on the same inputs (issue 6), and its plan is what the rules say."""
import numpy as np
import pytest

from convnet.errors import ConfigError
from convnet.ops import conv as plain
from convnet.ops import kernels
from convnet.ops.fast import choose_algorithm, clear_plans, conv2d_backward, conv2d_forward, conv_plan
from convnet.ops.fast import plan as plan_module
from convnet.ops.fast.winograd import winograd_matrices
from convnet.ops.geometry import conv_geometry


def _needs_kernels():
    """Skip without numba, or when CONVNET_NUMBA=0 switches the compiled kernels off."""
    pytest.importorskip("numba")
    from convnet.ops import kernels

    if not kernels.enabled():
        pytest.skip("compiled kernels switched off (CONVNET_NUMBA=0)")


@pytest.fixture
def fresh_plans():
    """Plans made from scratch, and forgotten afterwards: for tests that change a rule."""
    clear_plans()
    yield
    clear_plans()


def _reference(x, w, b, pads):
    """Direct float64 loops over the window (the definition)."""
    n, h, wd, c = x.shape
    kh, kw, _, k = w.shape
    (pt, pb), (pl, pr) = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho, wo = h + pt + pb - kh + 1, wd + pl + pr - kw + 1
    y = np.empty((n, ho, wo, k))
    for i in range(ho):
        for j in range(wo):
            y[:, i, j, :] = np.tensordot(xp[:, i : i + kh, j : j + kw, :], w, axes=([1, 2, 3], [0, 1, 2])) + b
    return y


CASES = [((2, 9, 11, 6), 5, ((1, 1), (1, 1))), ((1, 8, 8, 4), 3, ((0, 0), (0, 0))), ((2, 7, 6, 3), 4, ((2, 0), (1, 2)))]


@pytest.mark.parametrize("algorithm", ["im2col", "winograd2", "winograd4"])
@pytest.mark.parametrize("shape, k, pads", CASES)
def test_forward_and_gradients_match_im2col_in_float64(algorithm, shape, k, pads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((3, 3, shape[3], k))
    b = rng.standard_normal(k)
    y, cache = conv2d_forward(x, w, b, padding=pads, algorithm=algorithm, workspace_bytes=4096)
    assert cache.algorithm == algorithm
    ref = _reference(x, w, b, pads)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    dy = rng.standard_normal(y.shape)
    _, base = conv2d_forward(x, w, b, padding=pads, algorithm="im2col")
    for got, want in zip(conv2d_backward(dy, cache), conv2d_backward(dy, base)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


@pytest.mark.parametrize("algorithm, tol", [("im2col", 1e-5), ("gemm1x1", 1e-5), ("winograd2", 1e-5), ("winograd4", 1e-4)])
def test_float32_accuracy_against_the_float64_reference(algorithm, tol):
    rng = np.random.default_rng(1)
    kernel = 1 if algorithm == "gemm1x1" else 3
    pad = 0 if kernel == 1 else 1
    x = rng.standard_normal((2, 12, 12, 64))
    w = rng.standard_normal((kernel, kernel, 64, 64)) / np.sqrt(kernel * kernel * 64)
    b = rng.standard_normal(64)
    ref = _reference(x, w, b, ((pad, pad), (pad, pad)))
    y, _ = conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), padding=pad, algorithm=algorithm)
    assert y.dtype == np.float32
    err = np.abs(y - ref).max() / np.abs(ref).max()
    assert err <= tol, err


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_matrices_compute_a_correlation(m):
    at, g, bt = winograd_matrices(m)
    rng = np.random.default_rng(2)
    d, k = rng.standard_normal((m + 2, m + 2)), rng.standard_normal((3, 3))
    y = at @ ((g @ k @ g.T) * (bt @ d @ bt.T)) @ at.T
    ref = np.array([[np.sum(d[i : i + 3, j : j + 3] * k) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_auto_rule_and_refusals():
    g = conv_geometry((32, 32), (3, 3), padding=1)
    assert choose_algorithm(g, 64, 64, 1, n=64) == "winograd4"
    # too few channels for the transforms to pay (with numba: the direct loops, below)
    assert choose_algorithm(g, 3, 64, 1, n=64, numpy=False) == "im2col"
    assert choose_algorithm(conv_geometry((56, 56), (3, 3), padding=1), 256, 256, 1) == "winograd4"
    # few tiles and wide layers: F(2,3)'s cheaper transforms win (measured at 28²×512, N=1)
    assert choose_algorithm(conv_geometry((28, 28), (3, 3), padding=1), 512, 512, 1) == "winograd2"
    # ... but not from 256 to 512 channels (measured: F(4,3) 9.1-9.5 ms, F(2,3) 10.1-12.1)
    assert choose_algorithm(conv_geometry((28, 28), (3, 3), padding=1), 256, 512, 1) == "winograd4"
    # 14×14, one image: F(4,3)'s 16 rows of tiles and its filter transform do not pay; F(2,3)'s
    # 49 tiles do at 512 -> 512 (measured 5.5-7.3 ms against 7.2-8.5), not at 256 -> 256 or 7×7
    g14 = conv_geometry((14, 14), (3, 3), padding=1)
    assert choose_algorithm(g14, 512, 512, 1) == "winograd2"
    assert choose_algorithm(g14, 256, 256, 1) == "im2col" and choose_algorithm(g14, 256, 512, 1) == "im2col"
    assert choose_algorithm(conv_geometry((7, 7), (3, 3), padding=1), 512, 512, 1) == "im2col"
    assert choose_algorithm(conv_geometry((8, 8), (1, 1)), 64, 64, 1) == "gemm1x1"
    strided = conv_geometry((9, 9), (3, 3), stride=2, padding=1)
    with pytest.raises(ConfigError, match="stride-1"):
        choose_algorithm(strided, 64, 64, 1, "winograd4")
    with pytest.raises(ConfigError, match="one of"):
        choose_algorithm(g, 64, 64, 1, "fft")


DIRECT_CASES = [
    # x shape, K, kernel, stride, dilation, padding
    ((2, 9, 11, 5), 8, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),
    ((2, 10, 9, 3), 16, (3, 2), (2, 1), (1, 1), ((1, 0), (0, 1))),
    ((1, 12, 13, 4), 6, (2, 3), (1, 2), (2, 1), ((0, 0), (2, 1))),
    ((3, 7, 6, 2), 4, (5, 5), (1, 1), (1, 1), ((2, 2), (2, 2))),
    ((2, 6, 7, 3), 64, (3, 2), (1, 1), (1, 2), ((1, 1), (1, 0))),
    # 3-wide kernels whose AVX-512 blocks (K <= 16) cannot load each input once for three taps:
    # dilated columns, column stride 2 (with the AVX-512 module forced, whatever the CPU)
    ((2, 9, 14, 3), 16, (3, 3), (1, 1), (1, 2), ((1, 1), (2, 2)), "avx512"),
    ((2, 9, 25, 4), 12, (3, 3), (1, 2), (1, 1), ((1, 1), (1, 1)), "avx512"),
]


@pytest.mark.parametrize("case", DIRECT_CASES)
def test_direct_matches_the_reference_in_float64(case, split, monkeypatch, fresh_plans):
    """The paths of the generated loops (border pixels, blocks tap by tap, by row runs, loading each
    input once for three taps) against the float64 definition, with this CPU's module or the one named."""
    _needs_kernels()
    from convnet.ops import reference

    shape, k, kernel, stride, dilation, pads = case[:6]
    if len(case) > 6:
        monkeypatch.setenv("CONVNET_VECTOR_ISA", case[6])

    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, shape[3], k))
    b = rng.standard_normal(k)
    kw = dict(stride=stride, dilation=dilation, padding=pads, fit="crop")
    y, cache = conv2d_forward(x, w, b, algorithm="direct", **kw)
    assert cache.algorithm == "direct"
    g = conv_geometry(shape[1:3], kernel, stride=stride, padding=pads, dilation=dilation, fit="crop")
    ref = reference.conv2d(x, w, b, stride=stride, pads=g.pads, dilation=dilation)[:, : g.out_hw[0], : g.out_hw[1]]
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    dy = rng.standard_normal(y.shape)
    _, base = conv2d_forward(x, w, b, algorithm="im2col", **kw)
    for got, want in zip(conv2d_backward(dy, cache), conv2d_backward(dy, base)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


@pytest.mark.parametrize("isa", ["avx2", "avx512"])
@pytest.mark.parametrize("width, channels", [(11, 7), (31, 7), (11, 31)])
def test_every_direct_kernel_in_float32(split, isa, width, channels, monkeypatch):
    """Both instruction sets' register blocks, whichever CPU runs the test (same sums, other blocks);
    W = 11 and 31 leave columns over from the blocks of the cascades (10, 7, 5 and 2 at a time), and
    C = 7 and 31 channels from every block of the weight gradient's (16, 8, 4 and 2 at a time)."""
    _needs_kernels()
    from convnet.ops.kernels import direct

    monkeypatch.setenv("CONVNET_VECTOR_ISA", isa)
    rng = np.random.default_rng(4)
    for k in direct.loops(isa).KERNELS:  # every generated kernel, remainder columns and channels included
        x = rng.standard_normal((2, 9, width, channels))
        w = rng.standard_normal((3, 3, channels, k)) / np.sqrt(9 * channels)
        b = rng.standard_normal(k)  # the kernels start their sums at the bias
        ref = _reference(x, w, b, ((1, 1), (1, 1)))
        y, cache = conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), padding=1,
                                  algorithm="direct")
        assert y.dtype == np.float32
        err = np.abs(y - ref).max() / np.abs(ref).max()
        assert err <= 1e-5, (k, err)
        dy = rng.standard_normal(y.shape)
        _, base = conv2d_forward(x, w, b, padding=1, algorithm="im2col")  # float64
        for got, want in zip(conv2d_backward(dy.astype(np.float32), cache), conv2d_backward(dy, base)):
            if want is not None:
                assert got.dtype == np.float32
                assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), k


@pytest.mark.parametrize("pads", [((1, 1), (1, 1)), ((2, 0), (0, 1))])
@pytest.mark.parametrize("c, k, algorithm", [(128, 256, "im2col")])
def test_data_gradient_by_columns(monkeypatch, fresh_plans, pads, c, k, algorithm):
    """C·K ≥ 128·256 at stride 1: dx from column gradients and the compiled col2im equals
    the rotated-filter convolution's, and both pass the adjoint test with the definition:
    ⟨dy, conv(x', w)⟩ = ⟨dx, x'⟩ and ⟨dy, conv(x, w')⟩ = ⟨dw, w'⟩ for random probes."""
    _needs_kernels()
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 6, c))
    w = rng.standard_normal((3, 3, c, k)) / 30
    kw = dict(padding=pads, algorithm=algorithm, workspace_bytes=8 * 6 * 9 * c * 2)
    y, cache = conv2d_forward(x, w, **kw)
    dy = rng.standard_normal(y.shape)
    assert plan_module.dx_by_columns_pays(c, k) and cache.plan.dx == "col2im"
    dx, dw, _ = conv2d_backward(dy, cache)
    monkeypatch.setattr(plan_module, "dx_by_columns_pays", lambda *a, **k: False)
    clear_plans()
    _, cache = conv2d_forward(x, w, **kw)
    assert cache.plan.dx == "convolution"
    dx_conv, dw_conv, _ = conv2d_backward(dy, cache)
    np.testing.assert_allclose(dx, dx_conv, rtol=1e-10, atol=1e-10 * np.abs(dx).max())
    np.testing.assert_allclose(dw, dw_conv, rtol=1e-10, atol=1e-10 * np.abs(dw).max())
    zero = np.zeros(k)
    x_probe, w_probe = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    np.testing.assert_allclose(np.vdot(dy, _reference(x_probe, w, zero, pads)), np.vdot(dx, x_probe), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(dy, _reference(x, w_probe, zero, pads)), np.vdot(dw, w_probe), rtol=1e-10)


PLANES_CASES = [
    # x shape, K, kernel, stride, dilation, padding, algorithm
    ((2, 7, 9, 3), 16, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), "direct"),
    ((3, 9, 8, 1), 6, (5, 3), (2, 1), (1, 2), ((2, 1), (0, 2)), "direct"),
    ((2, 11, 10, 3), 64, (7, 7), (2, 2), (1, 1), ((3, 3), (3, 3)), "im2col"),
    ((2, 6, 7, 2), 5, (3, 2), (1, 3), (2, 1), ((0, 2), (1, 0)), "im2col"),
]


@pytest.mark.parametrize("workspace", [64 * 2**20, 1])  # 1 byte: one image a chunk
@pytest.mark.parametrize("shape, k, kernel, stride, dilation, pads, algorithm", PLANES_CASES)
def test_data_gradient_by_planes(fresh_plans, shape, k, kernel, stride, dilation, pads, algorithm, workspace):
    """C ≤ 3: dx from tap-major column gradients added back as shifted slices of channel planes
    equals the float64 definition's (the adjoint test ⟨dy, conv(x', w)⟩ = ⟨dx, x'⟩ with the reference
    loops) for strides, dilations, asymmetric pads and image chunks; dw is unchanged."""
    if algorithm == "direct":
        _needs_kernels()
    from convnet.ops import reference

    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, shape[3], k))
    kw = dict(stride=stride, dilation=dilation, padding=pads, fit="crop", workspace_bytes=workspace)
    y, cache = conv2d_forward(x, w, algorithm=algorithm, **kw)
    assert plan_module.dx_by_planes_pays(shape[3], 1) and cache.plan.dx == "planes"
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = conv2d_backward(dy, cache)
    g = conv_geometry(shape[1:3], kernel, stride=stride, padding=pads, dilation=dilation, fit="crop")
    x_probe = rng.standard_normal(x.shape)
    y_probe = reference.conv2d(x_probe, w, None, stride=stride, pads=g.pads, dilation=dilation)
    y_probe = y_probe[:, : g.out_hw[0], : g.out_hw[1]]
    np.testing.assert_allclose(np.vdot(dy, y_probe), np.vdot(dx, x_probe), rtol=1e-10)
    _, dw_only, _ = conv2d_backward(dy, cache, need_dx=False)
    np.testing.assert_array_equal(dw, dw_only)
    if algorithm == "im2col":  # and against the general column path, element by element
        orig = plan_module.dx_by_planes_pays
        try:
            plan_module.dx_by_planes_pays = lambda c, groups: False
            clear_plans()
            _, cols_cache = conv2d_forward(x, w, algorithm="im2col", **kw)
            assert cols_cache.plan.dx != "planes"
            dx_cols, _, _ = conv2d_backward(dy, cols_cache)
        finally:
            plan_module.dx_by_planes_pays = orig
        np.testing.assert_allclose(dx, dx_cols, rtol=1e-10, atol=1e-10 * np.abs(dx_cols).max())


@pytest.mark.parametrize("shape, stride", [((2, 7, 9, 3), (2, 3)), ((3, 8, 8, 16), (2, 2)), ((1, 5, 4, 2), (4, 1))])
def test_compiled_strided_spread_equals_zeros_and_a_strided_copy(shape, stride):
    """dx of a strided 1×1: the compiled one-pass spread against NumPy's zeros and slice
    assignment (the readable version), with cropped rows and columns and non-square strides."""
    _needs_kernels()
    from convnet.ops.kernels import col2im as col2im_kernels

    n, h, w, c = shape
    ho, wo = (h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1
    g = np.random.default_rng(3).standard_normal((n, ho, wo, c)).astype(np.float32)
    plain = np.zeros(shape, np.float32)
    plain[:, ::stride[0], ::stride[1]] = g
    dx = np.full(shape, np.nan, np.float32)  # every value written, the zeros too
    col2im_kernels.spread_strided(g, stride, dx)
    np.testing.assert_array_equal(dx, plain)


@pytest.mark.parametrize("isa", ["avx2", "avx512"])
def test_strided_1x1_with_128_filters_reads_in_place_at_inference(isa, monkeypatch, fresh_plans):
    """K = 128, stride 2: the cost model picks the direct kernel where the CPU's table has one
    (AVX-512), gemm1x1 elsewhere — also right after the other ISA planned the same shape; the
    inference forward (``backward=False``) runs it, a forward for backward makes (and keeps) the
    pixel copy dw needs and runs the GEMM of it — the same ``y`` to float32 rounding, the
    gradients of gemm1x1 either way; a layer asked for im2col keeps im2col's backward."""
    _needs_kernels()
    from convnet.ops.kernels import direct

    monkeypatch.setenv("CONVNET_VECTOR_ISA", "avx2" if isa == "avx512" else "avx512")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 9, 7, 16)).astype(np.float32)
    w = (rng.standard_normal((1, 1, 16, 128)) / 4).astype(np.float32)
    conv2d_forward(x, w, None, stride=2, fit="crop", backward=False)  # planned under the other ISA
    monkeypatch.setenv("CONVNET_VECTOR_ISA", isa)  # a plan of its own (plans are keyed by the ISA)
    b = rng.standard_normal(128).astype(np.float32)
    y_inf, cache_inf = conv2d_forward(x, w, b, stride=2, fit="crop", backward=False)
    y, cache = conv2d_forward(x, w, b, stride=2, fit="crop")
    plan = cache.plan
    assert plan.algorithm == ("direct" if direct.supports(128) else "gemm1x1") == ("direct" if isa == "avx512"
                                                                                   else "gemm1x1")
    assert (plan.dx, plan.dw) == ("gemm1x1", "gemm1x1")
    assert cache_inf.pixels is None and cache.pixels.nbytes == plan.cache_bytes > 0
    ref = _reference(x[:, ::2, ::2].astype(np.float64), w.astype(np.float64), b.astype(np.float64), ((0, 0), (0, 0)))
    for got in (y_inf, y):
        assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()
    dy = rng.standard_normal(y.shape).astype(np.float32)
    _, base = conv2d_forward(x, w, b, stride=2, fit="crop", algorithm="gemm1x1")
    for got, want in zip(conv2d_backward(dy, cache), conv2d_backward(dy, base)):
        np.testing.assert_array_equal(got, want)
    im2col = conv2d_forward(x, w, b, stride=2, fit="crop", algorithm="im2col")[1]
    assert im2col.pixels is None and im2col.plan.dw == "columns" and im2col.plan.cache_bytes == 0
    assert not direct.supports(128) or conv2d_forward(x[..., :16].repeat(8, axis=3), np.tile(w, (1, 1, 8, 1)),
                                                      None, stride=2, fit="crop")[1].plan.algorithm == "gemm1x1"


PHASES_CASES = [
    # x shape, kernel, stride, pads (top, left): non-square, odd sizes, a pad that makes a phase's
    # own pad negative (3 taps, stride 2, pad 2), one tap per phase (stride = kernel), rows cropped
    ((2, 9, 8, 6), (3, 3), (2, 1), (1, 1)),
    ((3, 7, 9, 4), (3, 2), (2, 2), (2, 0)),
    ((2, 8, 11, 8), (3, 3), (3, 3), (1, 0)),
    ((1, 12, 10, 16), (5, 4), (2, 3), (2, 1)),
    ((4, 6, 6, 32), (3, 3), (2, 2), (0, 0)),
    # a phase with no rows (H = 1 < stride), C = 64 and 12 (other blocks), column step 3
    ((2, 1, 5, 4), (2, 2), (2, 2), (0, 1)),
    ((2, 7, 10, 64), (3, 3), (2, 3), (1, 1)),
    ((3, 5, 9, 12), (2, 3), (2, 3), (0, 2)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("x_shape, kernel, stride, pads", PHASES_CASES)
def test_data_gradient_by_phases_equals_col2im(x_shape, kernel, stride, pads, dtype, split):
    """dx of a strided layer as one stride-1 direct convolution per phase of its rows and columns
    against the readable op's col2im (float64 to 1e-10; float32 to 1e-5 of the largest value)."""
    _needs_kernels()
    from convnet.ops.geometry import conv_geometry as geometry
    from convnet.ops.kernels import direct

    n, h, wd, c = x_shape
    rng = np.random.default_rng(11)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((*kernel, c, 5)).astype(dtype)
    padding = ((pads[0], kernel[0] - 1), (pads[1], kernel[1] - 1))
    geom = geometry((h, wd), kernel, stride=stride, padding=padding, fit="crop")
    assert direct.supports_data_grad_by_phases(c, kernel, stride, (1, 1), 1)
    y, cache = plain.conv2d_forward(x, w, None, stride=stride, padding=padding, fit="crop")
    assert y.shape[1:3] == geom.out_hw
    dy = rng.standard_normal(y.shape).astype(dtype)
    expected = plain.conv2d_backward(dy, cache)[0]
    dx = direct.data_grad_by_phases(dy, w, x_shape, stride, pads)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(dx, expected, rtol=0, atol=tol * np.abs(expected).max())


def test_data_gradient_by_phases_needs_every_phase_read():
    from convnet.ops.kernels import direct

    assert not direct.supports_data_grad_by_phases(16, (3, 2), (2, 3), (1, 1), 1)  # columns: 2 taps, stride 3
    assert not direct.supports_data_grad_by_phases(16, (3, 3), (1, 1), (1, 1), 1)  # stride 1: convolution
    assert not direct.supports_data_grad_by_phases(16, (3, 3), (2, 2), (2, 1), 1)  # dilated
    assert not direct.supports_data_grad_by_phases(16, (3, 3), (2, 2), (1, 1), 2)  # grouped
    assert not direct.supports_data_grad_by_phases(5, (3, 3), (2, 2), (1, 1), 1)  # no kernel for C = 5
    assert direct.supports_data_grad_by_phases(16, (3, 3), (2, 2), (1, 1), 1)


@pytest.mark.parametrize("c, k", [(3, 5), (6, 2)])  # dw's GEMM both ways round (K > C and K <= C)
def test_strided_1x1_keeps_the_pixels_read_for_dw(c, k):
    """A strided 1×1's forward keeps the pixels it copied out (exactly the plan's ``cache_bytes``)
    and its backward reads them: the same gradients as a cache without them, which copies them
    again, and as the float64 reference; a stride-1 layer keeps no copy."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 8, c))
    w = rng.standard_normal((1, 1, c, k))
    y, cache = conv2d_forward(x, w, None, stride=(2, 3), fit="crop")
    assert cache.plan.algorithm == "gemm1x1"
    assert cache.pixels.shape == (2, 4, 3, c) and cache.pixels.nbytes == cache.plan.cache_bytes
    np.testing.assert_array_equal(cache.pixels, x[:, ::2, ::3][:, :4, :3])
    dy = rng.standard_normal(y.shape)
    kept = cache.pixels
    cache.pixels = np.zeros_like(kept)  # dw reads the kept copy, not x
    assert not conv2d_backward(dy, cache)[1].any()
    cache.pixels = kept
    dx, dw, _ = conv2d_backward(dy, cache)
    assert dw.flags.c_contiguous
    cache.pixels = None  # a cache without the copy makes it again
    dx_again, dw_again, _ = conv2d_backward(dy, cache)
    np.testing.assert_array_equal(dw, dw_again)
    np.testing.assert_array_equal(dx, dx_again)
    _, ref_cache = plain.conv2d_forward(x, w, None, stride=(2, 3), fit="crop")
    ref_dx, ref_dw, _ = plain.conv2d_backward(dy, ref_cache)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    _, cache1 = conv2d_forward(x, w, None)
    assert cache1.pixels is None and cache1.plan.cache_bytes == 0


@pytest.mark.parametrize("shape, k, kernel, stride, dilation, pads, algorithm", PLANES_CASES)
def test_compiled_planes_equal_numpy_slice_adds(monkeypatch, shape, k, kernel, stride, dilation, pads, algorithm):
    """The compiled gather into channel planes against NumPy's slice additions (the readable
    version), float32, two images a chunk: the same sums in the same tap order, to the bit."""
    _needs_kernels()
    from convnet.ops.fast import columns

    rng = np.random.default_rng(9)
    w = rng.standard_normal((*kernel, shape[3], k)).astype(np.float32)
    geom = conv_geometry(shape[1:3], kernel, stride=stride, padding=pads, dilation=dilation, fit="crop")
    dy = rng.standard_normal((shape[0], *geom.out_hw, k)).astype(np.float32)
    per_two = 2 * columns.planes_bytes(1, geom, shape[3], 4, 2**30)
    compiled = columns.dx_by_planes(dy, w, geom, shape, per_two)
    monkeypatch.setenv("CONVNET_NUMBA", "0")
    plain = columns.dx_by_planes(dy, w, geom, shape, per_two)
    np.testing.assert_array_equal(compiled, plain)


def test_generated_direct_kernels_are_up_to_date():
    from convnet.ops.kernels import direct_gen

    for isa in ("avx2", "avx512"):
        assert direct_gen.target(isa).read_text() == direct_gen.module_source(isa), (
            f"{direct_gen.target(isa).name} is stale: run python -m convnet.ops.kernels.direct_gen"
        )


def test_direct_rule_and_refusals(monkeypatch):
    _needs_kernels()
    from convnet.ops import kernels

    g = conv_geometry((32, 32), (3, 3), padding=1)
    assert choose_algorithm(g, 16, 16, 1, n=64) == "direct"
    assert choose_algorithm(g, 3, 16, 1, n=64) == "direct"
    assert choose_algorithm(g, 16, 32, 1, n=64) == "direct"
    assert choose_algorithm(g, 3, 64, 1, n=64) == "direct"  # an RGB first layer
    assert choose_algorithm(g, 8, 64, 1, n=64) == "im2col"  # C·K < 32·32: no Winograd either
    stem = conv_geometry((224, 224), (7, 7), stride=2, padding=3, fit="crop")
    assert choose_algorithm(stem, 3, 64, 1, n=8) == "direct"  # the 7×7/2 stem: one run of 7·3 values a row
    assert choose_algorithm(conv_geometry((16, 16), (3, 3), padding=1), 32, 32, 1, n=64) == "direct"
    down = conv_geometry((16, 16), (3, 3), stride=2, padding=1, fit="crop")  # a CIFAR ResNet's 32 -> 64 at /2
    assert choose_algorithm(down, 32, 64, 1, n=64) == "direct"
    assert choose_algorithm(down, 128, 64, 1, n=64) == "im2col"
    assert choose_algorithm(conv_geometry((16, 16), (3, 3), padding=1), 32, 64, 1, n=64) != "direct"  # stride 1
    # 64 -> 32 is left to the other rules; without numba, F(4,3) beats im2col's 32-column GEMM
    assert choose_algorithm(conv_geometry((16, 16), (3, 3), padding=1), 64, 32, 1, n=64) == "winograd4"
    assert choose_algorithm(g, 16, 16, 1, n=64, numpy=False) == "im2col"  # CuPy arrays
    assert choose_algorithm(g, 16, 10, 1, n=64) == "im2col"  # no kernel for K = 10
    assert choose_algorithm(conv_geometry((14, 14), (3, 3), padding=1), 256, 256, 1) == "im2col"  # ResNet-18 layer3
    with pytest.raises(ConfigError, match="K in"):
        choose_algorithm(g, 16, 10, 1, "direct")
    with pytest.raises(ConfigError, match="groups=1"):
        choose_algorithm(g, 16, 16, 2, "direct")
    monkeypatch.setenv("CONVNET_NUMBA", "0")
    assert choose_algorithm(g, 16, 16, 1, n=64) == "im2col"
    assert choose_algorithm(conv_geometry((16, 16), (3, 3), padding=1), 32, 32, 1, n=64) == "winograd4"
    with pytest.raises(ConfigError, match="numba"):
        choose_algorithm(g, 16, 16, 1, "direct")


def test_direct_weight_gradient_only_while_one_image_stays_in_cache():
    """The dw kernel reads one image's dy once per tap and channel block: a 224×224 RGB first layer
    (12.8 MB of dy an image) takes the columns' GEMM instead; CIFAR sizes take the kernel."""
    _needs_kernels()
    small = conv_plan((64, 32, 32, 3), (3, 3, 3, 64), np.float32, padding=1)
    large = conv_plan((1, 224, 224, 3), (3, 3, 3, 64), np.float32, padding=1)
    assert (small.algorithm, small.dw) == ("direct", "direct")
    assert (large.algorithm, large.dw) == ("direct", "columns")


def test_direct_threads_survive_a_fork(monkeypatch):
    _needs_kernels()
    import multiprocessing

    from convnet.ops.kernels import parallel

    monkeypatch.setattr(parallel, "SPLIT_MIN_WORK", 0)  # split even this small layer (the child inherits it)

    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 8, 8, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 8)).astype(np.float32)
    y, _ = conv2d_forward(x, w, padding=1, algorithm="direct")  # the parent's helper thread exists now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_direct_in_child, (x, w)).get(timeout=120)
    np.testing.assert_array_equal(got, y)


def _direct_in_child(x, w):
    return conv2d_forward(x, w, padding=1, algorithm="direct")[0]


# -- the fast op against the readable one, every way of computing y, dx and dw -----------------------
PLAIN_CASES = [
    # x shape, w shape, kwargs (algorithm forced or "auto"), the plan's (algorithm, dx, dw) with numba on
    ((2, 9, 8, 6), (3, 2, 3, 4), dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2,
                                      fit="crop"), ("im2col", "col2im", "columns")),
    ((2, 7, 6, 5), (3, 3, 5, 7), dict(padding=((2, 0), (1, 1)), dilation=(2, 1)),
     ("im2col", "convolution", "columns")),
    ((2, 7, 9, 3), (3, 2, 3, 5), dict(stride=(1, 2), padding=(1, 0), fit="crop"), ("im2col", "planes", "columns")),
    ((3, 4, 5, 6), (1, 1, 6, 5), dict(), ("gemm1x1", "gemm1x1", "gemm1x1")),
    ((2, 7, 6, 4), (3, 3, 4, 5), dict(padding=((1, 2), (0, 1)), algorithm="winograd2"),
     ("winograd2", "winograd", "winograd")),
    ((2, 9, 7, 3), (3, 3, 3, 4), dict(padding=1, algorithm="winograd4"), ("winograd4", "winograd", "winograd")),
    ((8, 2, 3, 4), (3, 2, 4, 5), dict(padding=((1, 1), (1, 0))), ("smallmap", "smallmap", "smallmap")),
    ((2, 9, 8, 6), (3, 2, 6, 8), dict(padding=((1, 0), (2, 1)), dilation=(1, 2)), ("direct", "convolution", "direct")),
    ((2, 9, 8, 6), (3, 3, 6, 8), dict(stride=(2, 1), padding=1, fit="crop"), ("direct", "phases", "direct")),
    ((2, 7, 8, 4), (3, 2, 4, 64), dict(stride=(1, 2), padding=((1, 1), (0, 1)), fit="crop"),
     ("direct", "phases", "direct")),
    # a phase of the columns no tap reads (kernel narrower than the stride): col2im
    ((2, 9, 8, 6), (3, 2, 6, 8), dict(stride=(2, 3), padding=1, fit="crop"), ("direct", "col2im", "direct")),
    # one image's dy above what the dw kernel keeps in cache (plan.direct_dw_pays): dw by columns
    ((1, 66, 66, 4), (3, 3, 4, 64), dict(padding=1), ("direct", "convolution", "columns")),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs, expected", PLAIN_CASES)
def test_the_fast_op_equals_the_readable_op(x_shape, w_shape, kwargs, expected, dtype, split):
    """Same inputs, random dy (non-square kernels and strides, dilation, asymmetric pads, groups):
    y, dx, dw and db of every plan equal the readable im2col op's — float64 to 1e-10."""
    kwargs = dict(kwargs)
    if expected[0] == "direct" or kwargs.get("algorithm") == "direct":
        _needs_kernels()
    rng = np.random.default_rng(9)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[3]).astype(dtype)
    y, cache = conv2d_forward(x, w, b, **kwargs)
    if kernels.enabled():
        assert (cache.plan.algorithm, cache.plan.dx, cache.plan.dw) == expected
    kwargs.pop("algorithm", None)
    y_plain, cache_plain = plain.conv2d_forward(x, w, b, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else (1e-4 if expected[0] == "winograd4" else 1e-5)
    got, want = (y, *conv2d_backward(dy, cache)), (y_plain, *plain.conv2d_backward(dy, cache_plain))
    for g, e, what in zip(got, want, ("y", "dx", "dw", "db")):
        assert g.dtype == dtype and g.shape == e.shape, what
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol * np.abs(e).max(), err_msg=what)
    none, dw, _ = conv2d_backward(dy, cache, need_dx=False)
    assert none is None
    np.testing.assert_array_equal(dw, got[2])


def test_one_plan_per_shape_and_switch(monkeypatch):
    """The op looks its plan up (the same object for the same arguments); numba switched off, the
    plan is another one: no compiled algorithm, no compiled col2im."""
    kw = dict(stride=1, padding=1, algorithm="auto")
    p1 = conv_plan((64, 32, 32, 16), (3, 3, 16, 16), np.float32, **kw)
    assert conv_plan((64, 32, 32, 16), (3, 3, 16, 16), np.dtype("float32"), **kw) is p1
    x = np.zeros((64, 32, 32, 16), dtype=np.float32)
    assert conv2d_forward(x, np.zeros((3, 3, 16, 16), dtype=np.float32), **kw)[1].plan is p1
    monkeypatch.setenv("CONVNET_NUMBA", "0")
    p0 = conv_plan((64, 32, 32, 16), (3, 3, 16, 16), np.float32, **kw)
    assert not p0.compiled and p0.algorithm == "im2col" and p0.dx == "convolution"
    assert p0.reason and p0.forward.total == sum(b for _, b in p0.forward.parts)


def test_the_plan_counts_what_explain_shows():
    """im2col's multiplies, the forward workspace of a padded im2col layer and Winograd's transformed filter."""
    p = conv_plan((2, 14, 14, 512), (3, 3, 512, 512), np.float32, padding=1, algorithm="im2col")
    assert p.multiplies == p.im2col_multiplies == 2 * 14 * 14 * 9 * 512 * 512
    assert p.forward.total == 2 * 16 * 16 * 512 * 4 + 2 * 14 * 14 * 9 * 512 * 4  # padded x + one block: both images
    w4 = conv_plan((1, 8, 8, 64), (3, 3, 64, 64), np.float32, padding=1, algorithm="winograd4")
    assert w4.forward.temp == 36 * 64 * 64 * 4 and w4.scratch_kind == "winograd"
