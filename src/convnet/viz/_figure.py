"""What every picture shares: a Figure drawn by Agg (no pyplot, no global state), saved as PNG."""
from __future__ import annotations

import math
import os

DPI = 100  # every PNG is written at this resolution: a figure of w × h inches is 100·w × 100·h pixels


def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure on its own Agg canvas (safe in threads and without a display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: str | os.PathLike) -> str:
    """Write ``fig`` to ``path`` as PNG at :data:`DPI` (the size is the figure's, never cropped or grown)."""
    fig.savefig(path, dpi=DPI, format="png")
    return str(path)


def grid(n: int, max_cols: int | None = None) -> tuple[int, int]:
    """Rows and columns of a near-square grid for ``n`` tiles (at most ``max_cols`` columns)."""
    cols = max(1, math.ceil(math.sqrt(n)))
    if max_cols is not None:
        cols = min(cols, max_cols)
    return max(1, math.ceil(n / cols)), cols
