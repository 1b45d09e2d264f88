"""Analysis of a net from its shapes: summary table, memory model, receptive fields, sizing lint."""
from .lint import SizingWarning, lint
from .memory import MemoryEstimate, MemoryModel, estimate, format_bytes, parse_bytes
from .receptive import Field, receptive_fields, stack_receptive_field
from .summary import Row, Summary, summarize

__all__ = [
    "Field",
    "MemoryEstimate",
    "MemoryModel",
    "Row",
    "SizingWarning",
    "Summary",
    "estimate",
    "format_bytes",
    "lint",
    "parse_bytes",
    "receptive_fields",
    "stack_receptive_field",
    "summarize",
]
