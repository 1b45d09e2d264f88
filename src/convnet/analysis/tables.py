"""Plain-text, Markdown and CSV rendering of a table of rows (no dependencies).

A table is a list of column headers and a list of rows of already formatted
strings; numbers are right-aligned, text left-aligned.
"""
from __future__ import annotations

import csv
import io


def human(n: float, *, unit: str = "") -> str:
    """``15_470_264_320 -> '15.47G'`` (powers of 1000, for counts such as MACs)."""
    n = float(n)
    for suffix in ("", "K", "M", "G", "T", "P"):
        if abs(n) < 1000 or suffix == "P":
            text = f"{n:.0f}" if suffix == "" else f"{n:.2f}{suffix}"
            return text + unit
        n /= 1000
    return f"{n:.2f}P{unit}"  # pragma: no cover


def grouped(n: int) -> str:
    """``138357544 -> '138,357,544'``."""
    return f"{int(n):,}"


def _is_number(text: str) -> bool:
    t = text.replace(",", "").replace(".", "").replace("×", "").rstrip("KMGTPiB ").strip()
    return bool(t) and t.lstrip("-").isdigit()


def text_table(headers: list[str], rows: list[list[str]], *, footer: list[str] | None = None, title: str = "") -> str:
    """A box-free terminal table: header, a rule, rows, a rule and the footer."""
    body = rows + ([footer] if footer else [])
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) or r[i] in ("", "-") for r in rows) and any(_is_number(r[i]) for r in rows)
               for i in range(len(headers))]

    def line(cells):
        out = []
        for c, w, num in zip(cells, widths, numeric):
            out.append(c.rjust(w) if num else c.ljust(w))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = ([title] if title else []) + [line(headers), rule] + [line(r) for r in rows]
    if footer:
        lines += [rule, line(footer)]
    return "\n".join(lines)


def markdown_table(headers: list[str], rows: list[list[str]], *, footer: list[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; numeric columns right-aligned; the footer in bold."""
    numeric = [any(_is_number(r[i]) for r in rows) for i in range(len(headers))]

    def esc(c: str) -> str:
        return c.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |",
             "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    if footer:
        lines.append("| " + " | ".join(f"**{esc(c)}**" if c else "" for c in footer) + " |")
    return "\n".join(lines)


def csv_table(headers: list[str], rows: list[list]) -> str:
    """RFC 4180 CSV text (``\\r\\n`` line ends, as the csv module writes)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue()
