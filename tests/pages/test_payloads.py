"""Issue 19: the numbers the pages embed are the engine's, checked in Python (no browser)."""
import json
import re

import numpy as np
import pytest

from convnet.errors import ConfigError, GeometryError
from convnet.pages import Subject, demo_payload, explore_payload, render_page, sample_image
from convnet.pages.demo_backward import backward_payload
from convnet.pages.html import embed_json
from convnet.pages.quantize import quantize, shrink
from convnet.pattern import parse


def naive_conv(xpad, w, b, stride, dilation):
    """y[i, j, k] = b[k] + Σ xpad[i·sh + a·dh, j·sw + b·dw, c] · w[a, b, c, k], float64 loops."""
    kh, kw, c, k = w.shape
    ho = (xpad.shape[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xpad.shape[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((ho, wo, k))
    for i in range(ho):
        for j in range(wo):
            for f in range(k):
                s = b[f]
                for a in range(kh):
                    for bb in range(kw):
                        for ch in range(c):
                            s += xpad[i * stride[0] + a * dilation[0], j * stride[1] + bb * dilation[1], ch] * w[a, bb, ch, f]
                y[i, j, f] = s
    return y


def test_conv_defaults_are_the_notes_geometry():
    p = demo_payload("conv")
    x, xp, w, y = (np.array(p[k]) for k in ("x", "x_padded", "w", "y"))
    assert x.shape == (5, 5, 3) and xp.shape == (7, 7, 3) and w.shape == (3, 3, 3, 2) and y.shape == (3, 3, 2)
    assert p["geometry"]["stride"] == [2, 2] and p["geometry"]["pads"] == [[1, 1], [1, 1]]
    assert set(np.unique(x)) <= {0, 1, 2} and set(np.unique(w)) <= {-1, 0, 1}  # checkable by hand
    np.testing.assert_array_equal(y, naive_conv(xp, w, np.array(p["b"]), (2, 2), (1, 1)))


@pytest.mark.parametrize("opts", [dict(size=(6, 5), kernel=(3, 2), stride=(1, 3), padding=(1, 0), seed=4),
                                  dict(size=7, kernel=3, stride=1, padding=2, dilation=2, depth=2, filters=3)])
def test_conv_options_match_a_naive_loop(opts):
    p = demo_payload("conv", **opts)
    g = p["geometry"]
    y = naive_conv(np.array(p["x_padded"]), np.array(p["w"]), np.array(p["b"]), g["stride"], g["dilation"])
    np.testing.assert_array_equal(np.array(p["y"]), y)


def test_bad_geometry_is_a_geometry_error_without_python_advice():
    with pytest.raises(GeometryError, match="Change the stride") as info:
        demo_payload("conv", stride=3)
    assert "fit=" not in str(info.value)
    with pytest.raises(GeometryError, match="smaller than the filter"):
        demo_payload("conv", kernel=7, padding=0)
    with pytest.raises(ConfigError, match="depth"):
        demo_payload("conv", depth=99)


def test_im2col_rows_are_windows_and_the_gemm_is_the_convolution():
    p = demo_payload("im2col")
    cols, xp = np.array(p["cols"]), np.array(p["x_padded"])
    assert cols.shape == (9, 27)
    np.testing.assert_array_equal(cols[4], xp[2:5, 2:5].reshape(-1))  # window (1, 1) at stride 2
    np.testing.assert_array_equal(np.array(p["product"]).reshape(3, 3, 2), np.array(p["y"]))
    n = p["notes"]
    assert (n["out"], n["column"], n["windows"]) == (55, 363, 3025)


def test_pool_switches_route_the_gradient():
    p = demo_payload("pool")
    x, y, s, dy, dx = (np.array(p[k]) for k in ("x", "y", "switches", "dy", "dx"))
    assert x.shape == (4, 4, 1) and y.shape == (2, 2, 1)
    expected = np.zeros_like(x)
    for i in range(2):
        for j in range(2):
            win = x[2 * i:2 * i + 2, 2 * j:2 * j + 2, 0].ravel()
            assert y[i, j, 0] == win.max() and s[i, j, 0] == int(np.argmax(win))  # first maximum wins
            a, b = divmod(s[i, j, 0], 2)
            expected[2 * i + a, 2 * j + b, 0] += dy[i, j, 0]
    np.testing.assert_array_equal(dx, expected)


def test_fc_and_its_conv_twin_agree():
    p = demo_payload("fc-conv")
    x, w = np.array(p["x"]), np.array(p["w_fc"])
    np.testing.assert_array_equal(np.array(p["fc"]), x.reshape(-1) @ w + np.array(p["b"]))
    np.testing.assert_array_equal(np.array(p["conv"])[0, 0], np.array(p["fc"]))
    big = np.array(p["x_big"])
    np.testing.assert_array_equal(np.array(p["slid"])[2, 1], big[2:9, 1:8].reshape(-1) @ w + np.array(p["b"]))


@pytest.mark.parametrize("opts", [{}, dict(stride=1), dict(size=(6, 5), kernel=(3, 2), stride=(1, 3), padding=(1, 0)),
                                  dict(size=7, stride=1, padding=2, dilation=2, depth=2)])
def test_backward_is_a_convolution_with_flipped_filters(opts):
    p = backward_payload(**opts)  # raises if the identity failed; check dx against a loop too
    x, w, dy = np.array(p["x"], float), np.array(p["w"], float), np.array(p["dy"], float)
    g = p["geometry"]
    (pt, pb), (pl, pr) = g["pads"]
    dxpad = np.zeros((x.shape[0] + pt + pb, x.shape[1] + pl + pr, x.shape[2]))
    for i in range(dy.shape[0]):
        for j in range(dy.shape[1]):
            for a in range(w.shape[0]):
                for b in range(w.shape[1]):
                    dxpad[i * g["stride"][0] + a * g["dilation"][0], j * g["stride"][1] + b * g["dilation"][1]] += w[a, b] @ dy[i, j]
    np.testing.assert_array_equal(np.array(p["dx"]), dxpad[pt:pt + x.shape[0], pl:pl + x.shape[1]])


def test_embedded_json_cannot_close_the_script():
    text = embed_json({"name": "</script><script>alert(1)</script>", "s": "\u2028&"})
    assert "</" not in text and "<" not in text and "\u2028" not in text
    assert json.loads(text)["name"] == "</script><script>alert(1)</script>"
    page = render_page(title="t <b>", lead="l", payload={"a": "</script>"}, script="demo_conv.js", command="convnet x")
    assert page.count("</script>") == 2 and "t &lt;b&gt;" in page  # the data element and the one script


def test_quantize_and_shrink():
    a = np.arange(2 * 5 * 5, dtype=float).reshape(5, 5, 2)
    q, lo, hi = quantize(a)
    assert q.dtype == np.uint8 and q[0, 0, 0] == 0 and q[-1, -1, 1] == 255
    np.testing.assert_allclose(lo + q / 255 * (hi - lo), a, atol=(hi - lo).max() / 255)
    assert shrink(a, 2).shape == (3, 3, 2) and shrink(a, 2)[0, 0, 0] == a[:2, :2, 0].mean()


def _subject(pattern, *, seed=0):
    net = parse(pattern)
    net.build(net.input_shape, rng=np.random.default_rng(seed))
    image, source = sample_image(net.input_shape)
    return Subject(net=net, image=image, x=image, classes=None, name="small", weights="random", image_source=source)


def test_explore_payload_fields_first_conv_and_cap():
    s = _subject("INPUT[32x32x3] -> CONV5-8/P2 -> RELU -> POOL2 -> CONV4-100/S2/P1 -> RELU -> FC-10")
    p = explore_payload(s, max_channels=16)
    layers = {l["name"]: l for l in p["layers"]}
    conv2 = [l for l in p["layers"] if l["kind"] == "CONV"][1]
    assert conv2["maps"]["shown"] == 16 and conv2["maps"]["channels"] == 100
    first = p["layers"][0]
    assert first["field"] == {"size": [5, 5], "jump": [1, 1], "start": [-2, -2]}
    assert conv2["field"] == {"size": [12, 12], "jump": [4, 4], "start": [-4, -4]}  # pool: 6, jump 2; then 4×4 at S2, P1
    assert p["first_conv"]["layer"] == first["name"] and len(p["top"]) == 5
    assert sum(t["p"] for t in p["top"]) <= 1 + 1e-9 and set(layers) == {n.name for n in s.net.nodes}
    # a tight payload cap shrinks the maps instead of failing
    small = explore_payload(s, max_channels=16, max_payload_bytes=20_000)
    assert small["max_side"] is not None and len(embed_json(small)) < len(embed_json(p))


def test_explore_page_of_a_bigger_net_stays_under_the_cap():
    s = _subject("INPUT[64x64x3] -> [CONV3-32/P1 -> RELU]*2 -> POOL2 -> CONV3-32/P1 -> RELU -> FC-10")
    p = explore_payload(s, max_payload_bytes=150_000)
    assert len(embed_json(p)) <= 150_000 and p["max_side"] is not None
