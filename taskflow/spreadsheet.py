"""Cells written for spreadsheets (CSV exports: replay, campaign ledgers)."""

from __future__ import annotations

from typing import Final

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(cell: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a ``'``."""
    return f"'{cell}" if cell.startswith(FORMULA_START) else cell
