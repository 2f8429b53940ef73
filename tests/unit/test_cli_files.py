from __future__ import annotations

import re
from pathlib import Path

import pytest

from linkbay_customers.services import ImportRejection
from linkbay_customers_cli._customer_files import (
    CustomerFile,
    CustomerFileFormat,
    RejectedRow,
    default_rejects_path,
    write_rejects,
)
from linkbay_customers_cli._errors import CommandError


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


class TestCsv:
    def test_cells_become_fields_and_empty_cells_are_absent(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "c.csv",
            "email,first_name,last_name,phone,birthday\n"
            "a@example.com,Ann,,+39 333 1234567,1990-05-15\n"
            "b@example.com,  Bob  ,Brown,,\n",
        )
        source = CustomerFile.open(path)
        assert source.row_count == 2
        assert list(source.rows()) == [
            {
                "email": "a@example.com",
                "first_name": "Ann",
                "phone": "+39 333 1234567",
                "birthday": "1990-05-15",
            },
            {"email": "b@example.com", "first_name": "Bob", "last_name": "Brown"},
        ]

    @pytest.mark.parametrize(
        ("cell", "tags"),
        [
            ("vip", ["vip"]),
            ('"vip, b2b"', ["vip", "b2b"]),
            ("vip;b2b; early_adopter", ["vip", "b2b", "early_adopter"]),
            ('"a,b;c"', ["a,b", "c"]),
            ('" ; vip ;"', ["vip"]),
        ],
    )
    def test_tags_are_split_on_semicolons_or_commas(
        self, tmp_path: Path, cell: str, tags: list[str]
    ) -> None:
        path = write(tmp_path, "c.csv", f"email,tags\na@example.com,{cell}\n")
        assert list(CustomerFile.open(path).rows()) == [{"email": "a@example.com", "tags": tags}]

    def test_preferences_are_json_objects(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "c.csv",
            'email,preferences\na@example.com,"{""language"": ""it"", ""n"": [1, 2]}"\n',
        )
        rows = list(CustomerFile.open(path).rows())
        assert rows == [{"email": "a@example.com", "preferences": {"language": "it", "n": [1, 2]}}]

    def test_a_row_the_reader_cannot_use_still_counts_and_reports_its_own_reason(
        self, tmp_path: Path
    ) -> None:
        path = write(
            tmp_path,
            "c.csv",
            "email,preferences\n"
            "a@example.com,{not json}\n"
            'b@example.com,"[1, 2]"\n'
            "c@example.com,,surplus\n"
            "d@example.com,\n",
        )
        source = CustomerFile.open(path)
        rows = list(source.rows())
        assert rows == [{}, {}, {}, {"email": "d@example.com"}]
        service_says = [ImportRejection(row, "email", "email: Field required") for row in (1, 2, 3)]
        rejected = source.rejected_rows(service_says)
        assert [(r.row, r.line, r.field) for r in rejected] == [
            (1, 2, "preferences"),
            (2, 3, "preferences"),
            (3, 4, None),
        ]
        assert rejected[0].reason.startswith("preferences: not valid JSON")
        assert rejected[1].reason == "preferences: must be a JSON object"
        assert rejected[2].reason == "has 3 cells but the header has 2 columns"

    def test_service_rejections_pass_through_with_their_line(self, tmp_path: Path) -> None:
        path = write(tmp_path, "c.csv", "email\n\na@example.com\n\n,\nnot-an-email\n")
        source = CustomerFile.open(path)
        assert source.row_count == 2  # blank lines and rows of empty cells are not rows
        list(source.rows())
        rejected = source.rejected_rows([ImportRejection(2, "email", "email: invalid")])
        assert rejected == [RejectedRow(row=2, line=6, field="email", reason="email: invalid")]

    def test_a_quoted_cell_may_span_lines(self, tmp_path: Path) -> None:
        path = write(tmp_path, "c.csv", 'email,last_name\na@example.com,"two\nlines"\nbad,x\n')
        source = CustomerFile.open(path)
        assert source.row_count == 2
        assert [source.line_of(1), source.line_of(2)] == [2, 4]

    def test_headers_are_matched_loosely_and_a_bom_is_ignored(self, tmp_path: Path) -> None:
        path = write(tmp_path, "c.csv", "\ufeffEmail, First Name ,last-name\na@example.com,A,B\n")
        assert list(CustomerFile.open(path).rows()) == [
            {"email": "a@example.com", "first_name": "A", "last_name": "B"}
        ]

    def test_semicolon_separated_files_are_recognised_by_their_header(self, tmp_path: Path) -> None:
        path = write(tmp_path, "c.csv", "email;first_name;tags\na@example.com;Anna;vip,b2b\n")
        assert list(CustomerFile.open(path).rows()) == [
            {"email": "a@example.com", "first_name": "Anna", "tags": ["vip", "b2b"]}
        ]

    def test_a_value_under_a_nameless_column_is_refused(self, tmp_path: Path) -> None:
        path = write(tmp_path, "c.csv", "email,\na@example.com,\nb@example.com,oops\n")
        source = CustomerFile.open(path)
        assert list(source.rows()) == [{"email": "a@example.com"}, {}]
        [rejected] = source.rejected_rows([ImportRejection(2, "email", "email: Field required")])
        assert rejected.reason == "has a value in a column without a name"

    @pytest.mark.parametrize(
        ("header", "message"),
        [
            ("email,first_name,id,updated_at", "unknown column(s) id, updated_at"),
            ("first_name,last_name", "the header has no email column"),
            ("email,Email", "the header repeats column(s) email"),
        ],
    )
    def test_a_header_that_cannot_work_fails_before_any_row(
        self, tmp_path: Path, header: str, message: str
    ) -> None:
        path = write(tmp_path, "c.csv", f"{header}\na@example.com\n")
        with pytest.raises(CommandError, match=re.escape(message)):
            CustomerFile.open(path)

    def test_an_empty_file_has_no_header(self, tmp_path: Path) -> None:
        with pytest.raises(CommandError, match="it is empty"):
            CustomerFile.open(write(tmp_path, "c.csv", "\n\n"))


class TestJsonLines:
    def test_each_line_is_a_row_and_blank_lines_are_skipped(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "c.jsonl",
            '{"email": "a@example.com", "tags": ["x"], "preferences": {"k": 1}}\n'
            "\n"
            "{broken\n"
            "[1, 2]\n"
            '{"email": "b@example.com"}',
        )
        source = CustomerFile.open(path)
        assert source.row_count == 4
        assert list(source.rows()) == [
            {"email": "a@example.com", "tags": ["x"], "preferences": {"k": 1}},
            {},
            {},
            {"email": "b@example.com"},
        ]
        rejected = source.rejected_rows(
            [ImportRejection(2, "email", "email: Field required"), ImportRejection(3, None, "x")]
        )
        assert [(r.row, r.line, r.field) for r in rejected] == [(2, 3, None), (3, 4, None)]
        assert rejected[0].reason.startswith("not valid JSON: ")
        assert rejected[1].reason == "must be a JSON object"

    def test_the_format_can_be_named_whatever_the_extension(self, tmp_path: Path) -> None:
        path = write(tmp_path, "export.txt", '{"email": "a@example.com"}\n')
        assert list(CustomerFile.open(path, CustomerFileFormat.JSONL).rows()) == [
            {"email": "a@example.com"}
        ]


class TestUnreadableFiles:
    def test_a_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(CommandError, match="no such file"):
            CustomerFile.open(tmp_path / "missing.csv")

    def test_a_directory(self, tmp_path: Path) -> None:
        folder = tmp_path / "folder.csv"
        folder.mkdir()
        with pytest.raises(CommandError, match="it is a directory"):
            CustomerFile.open(folder)

    def test_an_unknown_extension(self, tmp_path: Path) -> None:
        with pytest.raises(CommandError, match="--format") as caught:
            CustomerFile.open(write(tmp_path, "c.xlsx", "x"))
        assert caught.value.exit_code == 2

    def test_text_that_is_not_utf8_fails_before_anything_is_read_into_rows(
        self, tmp_path: Path
    ) -> None:
        path = write(tmp_path, "c.csv", "email,last_name\na@example.com,Müller\n", "latin-1")
        with pytest.raises(CommandError, match="not UTF-8"):
            CustomerFile.open(path)

    def test_a_csv_the_csv_module_cannot_parse(self, tmp_path: Path) -> None:
        path = write(tmp_path, "c.csv", f'email,last_name\na@example.com,"{"x" * 200_000}"\n')
        with pytest.raises(CommandError, match="field larger than field limit"):
            CustomerFile.open(path)


def test_the_reject_report_names_row_line_field_and_reason(tmp_path: Path) -> None:
    path = default_rejects_path(tmp_path / "customers.csv")
    assert path == tmp_path / "customers.csv.rejects.csv"
    write_rejects(
        path,
        [
            RejectedRow(3, 4, "email", "email: value is not a valid email address"),
            RejectedRow(5, None, None, 'not valid JSON: Expecting "," (column 3)'),
        ],
    )
    assert path.read_text().splitlines() == [
        "row,line,field,reason",
        "3,4,email,email: value is not a valid email address",
        '5,,,"not valid JSON: Expecting "","" (column 3)"',
    ]
