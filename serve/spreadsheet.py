"""CSV cells that spreadsheets show as text: never run operator-supplied text as a formula.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets (CSV injection): an official list's address such as
``=HYPERLINK("http://…")`` would become a link, or worse, in the moderator's spreadsheet. Every CSV
camid writes for people to open (the public cameras, the comparison and its per-district counts)
passes its cells through :func:`safe_cell`, which puts a single quote ``'`` before such text;
numbers stay numbers. Machine-read files (the training manifest) are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row", "safe_values"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value``, with a leading ``'`` when it is text a spreadsheet would read as a formula, and its
    carriage returns as line feeds (the ``csv`` module quotes a cell with a line feed, not one with a
    lone carriage return, which would split the row)."""
    if not isinstance(value, str):
        return value
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return "'" + text if value.startswith(FORMULA_STARTS) else text


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A CSV row (column -> value) with every cell made safe."""
    return {key: safe_cell(value) for key, value in row.items()}


def safe_values(values: Iterable[Any]) -> list[Any]:
    """A CSV row (a list of values) with every cell made safe."""
    return [safe_cell(value) for value in values]
