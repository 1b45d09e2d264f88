"""One self-contained HTML page: a template, the shared and the page's own CSS/JS inlined, and the
numbers Python computed embedded as JSON in ``<script type="application/json" id="data">``.

Nothing is fetched when the page opens (no network, no server: it works from ``file://``); the
JavaScript only reads the JSON, draws and animates.  The JSON is escaped so that no string in it
(a layer named ``</script>``) can close the script element early.
"""
from __future__ import annotations

import html
import json
from importlib import resources

from .. import __version__
from ..errors import ConfigError

__all__ = ["asset", "embed_json", "render_page"]

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<header><h1>{title}</h1><p class="lead">{lead}</p></header>
<main id="app"></main>
<footer>Written by <code>{command}</code> &middot; convnet {version}. Every number on this page was computed by
convnet in Python; the JavaScript only draws.</footer>
<script type="application/json" id="data">{data}</script>
<script>
{js}
</script>
</body>
</html>
"""


def asset(name: str) -> str:
    """The text of ``convnet/pages/assets/NAME`` (a package file, so it travels with an install)."""
    try:
        return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"The page asset {name!r} is missing from the installed package; reinstall convnet.") from None


def embed_json(payload) -> str:
    """``payload`` as JSON safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and the two
    JavaScript line separators are written as ``\\uXXXX`` escapes (the same value once parsed)."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    for ch in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def render_page(*, title: str, lead: str, payload: dict, script: str, command: str) -> str:
    """The whole page: ``common.css`` + ``common.js`` + the page's ``script`` (an asset name such
    as ``"demo_conv.js"``), with ``payload`` as the JSON the script reads."""
    return _TEMPLATE.format(
        title=html.escape(title), lead=html.escape(lead), css=asset("common.css"),
        js=asset("common.js") + "\n" + asset(script), data=embed_json(payload),
        command=html.escape(command), version=html.escape(__version__),
    )
