"""Plain-text layout shared by the views (`pipelines.cli.views`, `pipelines.cli.run_view`)."""

from __future__ import annotations

from collections.abc import Sequence


def align(rows: Sequence[Sequence[str]], right: Sequence[int] = (), indent: int = 2) -> str:
    """Lines of cells in columns two spaces apart; the last cell of a row is not padded.

    Args:
        rows: The rows, each a sequence of cells (as many in each row).
        right: The positions of the columns aligned to the right (numbers).
        indent: Spaces before each line.
    """
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(width) if column in right else cell.ljust(width)
                 for column, (cell, width) in enumerate(zip(row[:-1], widths, strict=False))]
        lines.append(" " * indent + "  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
