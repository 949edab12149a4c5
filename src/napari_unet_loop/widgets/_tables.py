"""Score tables that read at a glance: headers on two lines, columns as wide as their text."""

from __future__ import annotations

from qtpy.QtGui import QFont
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

# What a column header starts with before the class name; the class name goes on a line below.
_METRIC_PREFIXES = ("mean Dice ", "Dice ", "IoU ")


def two_line_header(text: str) -> str:
    """``Dice background`` → ``Dice\\nbackground`` (a narrow column shows it whole)."""
    for prefix in _METRIC_PREFIXES:
        if text.startswith(prefix):
            return f"{prefix.rstrip()}\n{text[len(prefix) :]}"
    return text.replace(" ", "\n", 1)


def score_table() -> QTableWidget:
    """A read-only table whose columns fit their contents and headers."""
    table = QTableWidget()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)  # the first column names the rows already
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table


def fill_table(
    table: QTableWidget, header: list[str], rows: list[list[str]], *, bold_rows: int = 0
) -> None:
    """Show ``rows`` under ``header`` (two-line headers); the first ``bold_rows`` rows in bold."""
    table.clear()
    table.setColumnCount(len(header))
    table.setRowCount(len(rows))
    table.setHorizontalHeaderLabels([two_line_header(text) for text in header])
    bold = QFont(table.font())
    bold.setBold(True)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if r < bold_rows:
                item.setFont(bold)
            table.setItem(r, c, item)
