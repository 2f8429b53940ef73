"""Customer files for ``import``: CSV or JSON Lines in, a CSV report of rejected rows out.

A file is read twice: once up front, to count its rows and to fail before anything
is written when it cannot be read at all, and once to stream the rows into
``CustomerService.import_customers``. Rows are numbered from 1 in file order, as
the service numbers them; blank lines are not rows.
"""

from __future__ import annotations

import csv
import json
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from linkbay_customers.schemas import CustomerCreate
from linkbay_customers.services import ImportRejection
from linkbay_customers_cli._errors import CommandError

__all__ = (
    "CustomerFile",
    "CustomerFileFormat",
    "RejectedRow",
    "default_rejects_path",
    "write_rejects",
)

_ENCODING = "utf-8-sig"  # tolerates the byte-order mark spreadsheet programs write


class CustomerFileFormat(StrEnum):
    """The file formats ``import`` reads."""

    CSV = "csv"
    JSONL = "jsonl"

    @classmethod
    def of(cls, path: Path) -> CustomerFileFormat:
        """The format a file's extension names.

        Raises:
            CommandError: the extension names no format ``import`` reads.
        """
        formats = {".csv": cls.CSV, ".jsonl": cls.JSONL, ".ndjson": cls.JSONL}
        found = formats.get(path.suffix.lower())
        if found is None:
            raise CommandError(
                f"cannot tell the format of {path} from its extension; "
                "name it .csv or .jsonl, or pass --format csv|jsonl",
                exit_code=2,
            )
        return found


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that was not imported, located in the file; never holds the row's values."""

    row: int
    line: int | None
    field: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class _Refusal:
    field: str | None
    reason: str


class CustomerFile:
    """A file of customers, checked and counted; ``rows()`` streams it for the import.

    Open one with ``CustomerFile.open``. A row the file itself makes unusable
    (malformed JSON, a ``preferences`` cell that is not a JSON object, too many
    cells) still counts as a row: it reaches the service as an empty row, which
    the service rejects, and ``rejected_rows`` reports the reader's reason for it.
    """

    def __init__(
        self,
        path: Path,
        file_format: CustomerFileFormat,
        schema: type[CustomerCreate] = CustomerCreate,
    ) -> None:
        self.path = path
        self.format = file_format
        self._columns = tuple(schema.model_fields)
        self.row_count = 0
        self._lines = array("Q")
        self._header: tuple[str, ...] = ()
        self._delimiter = ","
        self._refusals: dict[int, _Refusal] = {}

    @classmethod
    def open(
        cls,
        path: Path,
        file_format: CustomerFileFormat | None = None,
        schema: type[CustomerCreate] = CustomerCreate,
    ) -> CustomerFile:
        """Check that a file can be read, and count its rows.

        Its CSV columns are the fields of ``schema``: ``CustomerCreate``, or a
        host's subclass of it with fields of its own.

        Raises:
            CommandError: the file is missing, unreadable, not UTF-8, not valid CSV,
                or its header lacks ``email`` or names unknown columns.
        """
        if not path.exists():
            raise CommandError(f"cannot read {path}: no such file")
        if path.is_dir():
            raise CommandError(f"cannot read {path}: it is a directory")
        customer_file = cls(path, file_format or CustomerFileFormat.of(path), schema)
        for line, _ in customer_file._records():
            customer_file._lines.append(line)
        customer_file.row_count = len(customer_file._lines)
        return customer_file

    def rows(self) -> Iterator[Mapping[str, Any]]:
        """The rows as mappings of ``CustomerCreate`` fields, in file order."""
        self._refusals.clear()
        for number, (_, row) in enumerate(self._records(), start=1):
            if isinstance(row, _Refusal):
                self._refusals[number] = row
                yield {}
            else:
                yield row

    def line_of(self, row: int) -> int | None:
        """The line of the file where a row starts."""
        return self._lines[row - 1] if 0 < row <= len(self._lines) else None

    def rejected_rows(self, rejections: Sequence[ImportRejection]) -> list[RejectedRow]:
        """The service's rejections, with the reader's reasons where the reader refused."""
        rejected = []
        for rejection in rejections:
            refusal = self._refusals.get(rejection.row)
            field, reason = (
                (refusal.field, refusal.reason)
                if refusal is not None
                else (rejection.field, rejection.reason)
            )
            rejected.append(RejectedRow(rejection.row, self.line_of(rejection.row), field, reason))
        return rejected

    # ------------------------------------------------------------------ reading

    def _records(self) -> Iterator[tuple[int, dict[str, Any] | _Refusal]]:
        """Every row with the line it starts on; ``CommandError`` if the file is unreadable."""
        try:
            with self.path.open(encoding=_ENCODING, newline="") as stream:
                records = (
                    self._csv_records(stream)
                    if self.format is CustomerFileFormat.CSV
                    else self._jsonl_records(stream)
                )
                yield from records
        except UnicodeDecodeError as error:
            raise CommandError(
                f"cannot read {self.path}: it is not UTF-8 text (byte {error.start})"
            ) from None
        except csv.Error as error:
            raise CommandError(f"cannot read {self.path}: {error}") from None
        except OSError as error:
            raise CommandError(f"cannot read {self.path}: {error.strerror or error}") from None

    def _jsonl_records(self, stream: IO[str]) -> Iterator[tuple[int, dict[str, Any] | _Refusal]]:
        for line, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                yield line, _Refusal(None, f"not valid JSON: {error.msg} (column {error.colno})")
                continue
            if isinstance(value, dict):
                yield line, value
            else:
                yield line, _Refusal(None, "must be a JSON object")

    def _csv_records(self, stream: IO[str]) -> Iterator[tuple[int, dict[str, Any] | _Refusal]]:
        first, consumed = stream.readline(), 1
        while first and not first.strip():
            first, consumed = stream.readline(), consumed + 1
        if not first:
            raise CommandError(f"cannot read {self.path}: it is empty; a header row is needed")
        # Spreadsheets set to a European locale separate cells with semicolons.
        self._delimiter = ";" if ";" in first and "," not in first else ","
        self._header = self._check_header(next(csv.reader([first], self._dialect())))
        reader = csv.reader(stream, self._dialect())
        read = 0
        for cells in reader:
            line, read = consumed + read + 1, reader.line_num
            if any(cell.strip() for cell in cells):  # rows of empty cells are blank lines
                yield line, self._csv_row(cells)

    def _dialect(self) -> type[csv.Dialect]:
        return csv.excel if self._delimiter == "," else _SemicolonDialect

    def _check_header(self, cells: list[str]) -> tuple[str, ...]:
        header = tuple(cell.strip().lower().replace(" ", "_").replace("-", "_") for cell in cells)
        named = [name for name in header if name]
        duplicates = sorted({name for name in named if named.count(name) > 1})
        if duplicates:
            raise CommandError(
                f"{self.path}: the header repeats column(s) {', '.join(duplicates)}", exit_code=2
            )
        unknown = [name for name in named if name not in self._columns]
        if unknown:
            raise CommandError(
                f"{self.path}: unknown column(s) {', '.join(unknown)}; "
                f"the columns are {', '.join(self._columns)}",
                exit_code=2,
            )
        if "email" not in header:
            raise CommandError(f"{self.path}: the header has no email column", exit_code=2)
        return header

    def _csv_row(self, cells: list[str]) -> dict[str, Any] | _Refusal:
        if len(cells) > len(self._header):
            return _Refusal(
                None, f"has {len(cells)} cells but the header has {len(self._header)} columns"
            )
        row: dict[str, Any] = {}
        for name, cell in zip(self._header, cells, strict=False):
            value = cell.strip()
            if not value:
                continue  # an empty cell is an absent field
            if not name:
                return _Refusal(None, "has a value in a column without a name")
            if name == "tags":
                separator = ";" if ";" in value else ","
                row[name] = [tag.strip() for tag in value.split(separator) if tag.strip()]
            elif name == "preferences":
                try:
                    preferences = json.loads(value)
                except json.JSONDecodeError as error:
                    return _Refusal(
                        name, f"{name}: not valid JSON: {error.msg} (column {error.colno})"
                    )
                if not isinstance(preferences, dict):
                    return _Refusal(name, f"{name}: must be a JSON object")
                row[name] = preferences
            else:
                row[name] = value
        return row


class _SemicolonDialect(csv.excel):
    delimiter = ";"


def default_rejects_path(path: Path) -> Path:
    """``<input>.rejects.csv``, beside the input."""
    return path.with_name(f"{path.name}.rejects.csv")


def write_rejects(path: Path, rejected: Sequence[RejectedRow]) -> None:
    """Write the reject report: row, line, field and reason of every rejected row.

    Raises:
        CommandError: the report cannot be written.
    """
    try:
        with path.open("w", encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(("row", "line", "field", "reason"))
            for item in rejected:
                writer.writerow((item.row, item.line or "", item.field or "", item.reason))
    except OSError as error:
        raise CommandError(
            f"cannot write the reject report {path}: {error.strerror or error}"
        ) from None
