"""Issue 19: every page opened by headless Chromium: no console errors, no request but the file
itself (and data: URLs), clicks change what is highlighted, the numbers shown are the engine's,
and a screenshot is not blank."""
import io

import numpy as np
import pytest

from convnet.cli import main
from convnet.ops.conv import conv2d_forward

DEMOS = ("conv", "im2col", "pool", "fc-conv", "backward")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Every demo page and two explorer pages, written once by the command line."""
    root = tmp_path_factory.mktemp("pages")
    from PIL import Image

    yy, xx = np.mgrid[0:40, 0:48]
    Image.fromarray(np.stack([xx * 5, yy * 6, 255 - xx * 5], -1).astype(np.uint8)).save(root / "photo.png")
    out = {}
    for demo in DEMOS:
        out[demo] = root / f"{demo}.html"
        assert main(["demo", demo, "--out", str(out[demo])]) == 0
    out["lenet5"] = root / "lenet5.html"
    assert main(["explore", "lenet5", "--out", str(out["lenet5"])]) == 0
    out["small"] = root / "small.html"
    assert main(["explore", "INPUT[24x24x3] -> CONV3-8/P1 -> RELU -> POOL2 -> CONV3-12 -> RELU -> FC-4",
                 "--image", str(root / "photo.png"), "--out", str(out["small"])]) == 0
    return out


def _open(browser, path, *, ready=False):
    """A page with the console errors, page errors and requests it made collected."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = {"errors": [], "requests": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.goto("file://" + str(path))
    if ready:
        page.wait_for_function("window.convnetReady === true", timeout=30_000)
    return page, seen


def _check_clean(seen, path):
    assert seen["errors"] == []
    others = [u for u in seen["requests"] if u != "file://" + str(path) and not u.startswith("data:")]
    assert others == []


def _not_blank(page):
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"))
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    assert colours > 50 and img.std() > 10, f"{colours} colours, std {img.std():.1f}"


def _expected(demo, data, selected):
    """The number the clicked cell must show, from the engine (not from the page)."""
    if demo == "conv":
        g = data["geometry"]
        y, _ = conv2d_forward(np.array(data["x"], float)[None], np.array(data["w"], float), np.array(data["b"], float),
                              stride=tuple(g["stride"]), padding=tuple(p[0] for p in g["pads"]))
        i, j, k = selected
        return y[0, i, j, k]
    if demo == "pool":
        i, j, c = selected
        return np.array(data["x"])[2 * i:2 * i + 2, 2 * j:2 * j + 2, c].max()
    if demo == "backward":
        i, j, c = selected
        return data["dx_padded"][i][j][c]
    return None


@pytest.mark.parametrize("demo", DEMOS)
def test_demo_page(browser, pages, demo):
    path = pages[demo]
    page, seen = _open(browser, path)
    try:
        before = page.evaluate("JSON.stringify(window.convnetState.selected)")
        marked_before = page.eval_on_selector_all(".out, .win", "ns => ns.map(n => n.dataset.i + ',' + n.dataset.j).join(';')")
        page.locator("td.click").last.click()
        after = page.evaluate("JSON.stringify(window.convnetState.selected)")
        assert after != before
        marked_after = page.eval_on_selector_all(".out, .win", "ns => ns.map(n => n.dataset.i + ',' + n.dataset.j).join(';')")
        assert marked_after != marked_before and marked_after
        data = page.evaluate("window.convnetData")
        expected = _expected(demo, data, page.evaluate("window.convnetState.selected"))
        if expected is not None:
            assert float(page.get_attribute("#dot-result", "data-value")) == expected
        if demo == "conv":  # the written-out products are the window's and the filter's
            assert "✓" in page.inner_text("#dot")
            assert page.locator("#filter-1.active").count() == 1
        if demo == "fc-conv":
            assert page.inner_text("#same").startswith("✓")
        if demo == "im2col":
            assert "363 × 3025" in page.inner_text("#notes-arithmetic")
        page.click("#step")
        assert page.evaluate("JSON.stringify(window.convnetState.selected)") != after
        _not_blank(page)
        _check_clean(seen, path)
    finally:
        page.close()


def test_explore_lenet5_dot_product_and_receptive_field(browser, pages):
    path = pages["lenet5"]
    page, seen = _open(browser, path, ready=True)
    try:
        data = page.evaluate("window.convnetData")
        fc = data["first_conv"]
        page.locator("#layer-c1 canvas").click(position={"x": 30, "y": 30})  # channel 0, near its top-left
        sel = page.evaluate("window.convnetState.selected")
        assert sel["layer"] == "c1"
        import base64

        x = np.frombuffer(base64.b64decode(fc["x"]), "<f4").reshape(data["input"]["shape"])
        w = np.frombuffer(base64.b64decode(fc["w"]), "<f4").reshape(fc["w_shape"])
        b = np.frombuffer(base64.b64decode(fc["b"]), "<f4")
        y, _ = conv2d_forward(x[None], w, b, stride=tuple(fc["stride"]), padding=tuple(p[0] for p in fc["pads"]))
        shown = float(page.get_attribute("#dot-result", "data-value"))
        assert shown == pytest.approx(float(y[0, sel["row"], sel["column"], sel["channel"]]), rel=1e-5, abs=1e-5)
        rect = page.evaluate("JSON.parse(document.getElementById('receptive-field').dataset.rect)")
        assert rect == [sel["row"], sel["column"], 5, 5]  # c1: 5×5, stride 1, no padding
        page.locator("#layer-s4 canvas").click(position={"x": 5, "y": 5})
        rect = page.evaluate("JSON.parse(document.getElementById('receptive-field').dataset.rect)")
        assert rect[2:] == [16, 16]  # as `convnet summary` says
        assert "first layer" in page.inner_text("#dot")
        _not_blank(page)
        _check_clean(seen, path)
    finally:
        page.close()


def test_explore_pattern_with_an_image(browser, pages):
    path = pages["small"]
    assert path.stat().st_size < 300_000
    page, seen = _open(browser, path, ready=True)
    try:
        data = page.evaluate("window.convnetData")
        assert [l["name"] for l in data["layers"]] == page.eval_on_selector_all(".layer", "ns => ns.map(n => n.id.slice(6))")
        assert len(data["top"]) == 4
        page.locator(".layer canvas").nth(3).click(position={"x": 3, "y": 3})
        assert "receptive field" in page.inner_text("#dot")
        _not_blank(page)
        _check_clean(seen, path)
    finally:
        page.close()
