"""Reports over the store: the paper table, training curves and CSV exports.

Pure functions of store query results: they return values or write to the file they are
given, and leave printing, exit codes and defaults to the command line.

Names are re-exported lazily, so that `nlx.reports.tables` does not pay for importing
matplotlib (about a second) when no plot is drawn.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Cell": "tables",
    "CompareTable": "tables",
    "FORMATS": "tables",
    "METRIC_TITLES": "tables",
    "compare_table": "tables",
    "render": "tables",
    "rich_table": "tables",
    "IMAGE_SUFFIXES": "common",
    "plot_curves": "curves",
    "TABLES": "export",
    "export_csv": "export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
