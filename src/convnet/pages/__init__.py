"""Pages a browser opens from disk: the notes' demos with the engine's numbers, and an explorer
of any model convnet loads (``convnet demo``, ``convnet explore``; docs/pages.md).

Python computes every number; each page is one HTML file with its CSS and JavaScript inline and
its numbers as embedded JSON (:mod:`convnet.pages.html`); the JavaScript only draws and animates.
"""
from __future__ import annotations

from .demo_backward import backward_payload
from .demo_conv import conv_payload
from .demo_fc_conv import fc_conv_payload
from .demo_im2col import im2col_payload
from .demo_pool import pool_payload
from .explore import Subject, explore_payload
from .html import render_page
from .sample_input import sample_image

__all__ = ["DEMOS", "demo_payload", "explore_payload", "render_page", "sample_image", "Subject"]

#: demo name → the function that computes its page's numbers
DEMOS = {"conv": conv_payload, "im2col": im2col_payload, "pool": pool_payload, "fc-conv": fc_conv_payload,
         "backward": backward_payload}


def demo_payload(name: str, **options) -> dict:
    """The numbers of demo ``name`` (a key of :data:`DEMOS`) for the given options."""
    return DEMOS[name](**options)
