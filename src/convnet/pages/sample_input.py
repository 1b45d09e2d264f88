"""An input for the explorer when none is given: a digit for a grey net (the embedded 8×8 digits,
scaled up), a small picture of shapes for a colour one — so that every page shows something."""
from __future__ import annotations

import numpy as np

from ..data.digits import load_digits


def sample_image(shape) -> tuple[np.ndarray, str]:
    """``(image (H, W, C) float32 in [0, 1], words saying what it is)`` for an input ``shape``."""
    h, w, c = shape
    if c == 1:
        from PIL import Image

        _, test = load_digits()
        digit = np.asarray(test.x[0, :, :, 0] * 255, dtype=np.uint8)
        big = Image.fromarray(digit).resize((w, h), Image.BILINEAR)
        words = f"a digit ({test.classes[test.y[0]]}) of the embedded digits data, scaled to {h}×{w}"
        return (np.asarray(big, dtype=np.float32) / 255)[..., None], words
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / max(h - 1, 1), xx / max(w - 1, 1)
    img = np.empty((h, w, c), dtype=np.float32)
    for ch in range(c):
        img[..., ch] = (0.25 + 0.5 * (xx if ch % 3 == 0 else yy if ch % 3 == 1 else 1 - xx)).astype(np.float32)
    disc = (yy - 0.4) ** 2 + (xx - 0.35) ** 2 < 0.05
    square = (abs(yy - 0.7) < 0.15) & (abs(xx - 0.7) < 0.15)
    img[disc] = np.array([0.95, 0.2, 0.15, *[0.5] * max(0, c - 3)][:c], dtype=np.float32)
    img[square] = np.array([0.1, 0.3, 0.9, *[0.5] * max(0, c - 3)][:c], dtype=np.float32)
    return img, "a drawn picture (a red disc and a blue square on a gradient): no --image was given"
