"""The ``duplicates`` command's output: the pairs as CSV, and as a table."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from rich.table import Table

from linkbay_customers.services import DuplicateSuggestion

__all__ = ("DUPLICATE_COLUMNS", "duplicates_csv", "duplicates_table")

DUPLICATE_COLUMNS = (
    "customer_id",
    "other_id",
    "match_probability",
    "keep_customer_id",
    "keep_reason",
    "agreeing",
    "disagreeing",
)
"""The CSV header: the pair and its probability first, then the merge it suggests and
the fields (``;``-separated) that agree and disagree."""


def _row(suggestion: DuplicateSuggestion) -> list[str]:
    return [
        str(suggestion.customer_id),
        str(suggestion.other_id),
        f"{suggestion.match_probability:.6f}",
        str(suggestion.merge_request.target_customer_id),
        suggestion.keep_reason,
        ";".join(suggestion.agreeing),
        ";".join(suggestion.disagreeing),
    ]


def duplicates_csv(suggestions: Sequence[DuplicateSuggestion]) -> str:
    """The pairs as CSV, one row per pair, under ``DUPLICATE_COLUMNS``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(DUPLICATE_COLUMNS)
    writer.writerows(_row(s) for s in suggestions)
    return buffer.getvalue()


def duplicates_table(suggestions: Sequence[DuplicateSuggestion], *, title: str) -> Table:
    """The pairs as a table: ids, probability, the customer a merge keeps, the fields."""
    table = Table(title=title)
    for header in ("Customer", "Other", "Probability", "Keep", "Agreeing", "Disagreeing"):
        table.add_column(header, justify="right" if header == "Probability" else "left")
    for s in suggestions:
        table.add_row(
            str(s.customer_id),
            str(s.other_id),
            f"{s.match_probability:.3f}",
            f"{s.merge_request.target_customer_id} ({s.keep_reason})",
            ", ".join(s.agreeing),
            ", ".join(s.disagreeing) or "-",
        )
    return table
