"""Every convolution algorithm agrees with the float64 reference on the same inputs (issue 6)."""
import numpy as np
import pytest

from convnet.errors import ConfigError
from convnet.ops.conv import choose_algorithm, conv2d_backward, conv2d_forward
from convnet.ops.geometry import conv_geometry
from convnet.ops.winograd import winograd_matrices


def _needs_kernels():
    """Skip without numba, or when CONVNET_NUMBA=0 switches the compiled kernels off."""
    pytest.importorskip("numba")
    from convnet.ops import kernels

    if not kernels.enabled():
        pytest.skip("compiled kernels switched off (CONVNET_NUMBA=0)")


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
]


@pytest.mark.parametrize("shape, k, kernel, stride, dilation, pads", DIRECT_CASES)
def test_direct_matches_the_reference_in_float64(shape, k, kernel, stride, dilation, pads, split):
    _needs_kernels()
    from convnet.ops import reference

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


def test_every_direct_kernel_in_float32(split):
    _needs_kernels()
    from convnet.ops.kernels.direct_conv import KERNELS

    rng = np.random.default_rng(4)
    for k in KERNELS:  # every generated kernel, remainder columns (W = 11) and channels (C = 7) included
        x = rng.standard_normal((2, 9, 11, 7))
        w = rng.standard_normal((3, 3, 7, k)) / np.sqrt(63)
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
def test_data_gradient_by_columns(monkeypatch, pads, c, k, algorithm):
    """C·K ≥ 128·256 at stride 1: dx from column gradients and the compiled col2im equals
    the rotated-filter convolution's, and both pass the adjoint test with the definition:
    ⟨dy, conv(x', w)⟩ = ⟨dx, x'⟩ and ⟨dy, conv(x, w')⟩ = ⟨dw, w'⟩ for random probes."""
    _needs_kernels()
    from convnet.ops import conv as conv_module

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 6, c))
    w = rng.standard_normal((3, 3, c, k)) / 30
    y, cache = conv2d_forward(x, w, padding=pads, algorithm=algorithm, workspace_bytes=8 * 6 * 9 * c * 2)
    dy = rng.standard_normal(y.shape)
    assert conv_module.dx_by_columns_pays(c, k)
    dx, dw, _ = conv2d_backward(dy, cache)
    monkeypatch.setattr(conv_module, "dx_by_columns_pays", lambda *a, **k: False)
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
def test_data_gradient_by_planes(shape, k, kernel, stride, dilation, pads, algorithm, workspace):
    """C ≤ 3: dx from tap-major column gradients added back as shifted slices of channel planes
    equals the float64 definition's (the adjoint test ⟨dy, conv(x', w)⟩ = ⟨dx, x'⟩ with the reference
    loops) for strides, dilations, asymmetric pads and image chunks; dw is unchanged."""
    if algorithm == "direct":
        _needs_kernels()
    from convnet.ops import conv as conv_module
    from convnet.ops import reference

    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, shape[3], k))
    kw = dict(stride=stride, dilation=dilation, padding=pads, fit="crop", workspace_bytes=workspace)
    y, cache = conv2d_forward(x, w, algorithm=algorithm, **kw)
    assert conv_module.dx_by_planes_pays(shape[3], 1)
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
        _, cols_cache = conv2d_forward(x, w, algorithm="im2col", **kw)
        import convnet.ops.conv as cm

        orig = cm.dx_by_planes_pays
        try:
            cm.dx_by_planes_pays = lambda c, groups: False
            dx_cols, _, _ = conv2d_backward(dy, cols_cache)
        finally:
            cm.dx_by_planes_pays = orig
        np.testing.assert_allclose(dx, dx_cols, rtol=1e-10, atol=1e-10 * np.abs(dx_cols).max())


def test_generated_direct_kernels_are_up_to_date():
    from convnet.ops.kernels import direct_gen

    assert direct_gen.TARGET.read_text() == direct_gen.module_source(), (
        "src/convnet/ops/kernels/direct_conv.py is stale: run python -m convnet.ops.kernels.direct_gen"
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
