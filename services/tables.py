"""Spreadsheets in and out: the one CSV and XLSX writer (with the formula-injection guard)
and the reader of uploaded CSV and XLSX files (roster import)."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from python_calamine import CalamineWorkbook

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_READ_ROWS = 20_000


def safe_cell(value: Any) -> Any:
    """Spreadsheets run text starting with = + - @ (or a tab / carriage return before one)
    as a formula: such text is prefixed with '. Numbers and dates are left as they are."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel reads Chinese names."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else safe_cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(list(columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([safe_cell(v) for v in row])
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


class UnreadableFile(ValueError):
    pass


def read_rows(data: bytes, filename: str) -> list[list[Any]]:
    """The rows of the first sheet of an XLSX file, or of a CSV file (UTF-8 with or without
    a byte-order mark, or GB18030 as Chinese Excel saves it), header included. Cells keep
    their types from XLSX (dates, numbers); CSV cells are text."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        # calamine (Rust) reads a 5,000-row roster about 20 times faster than openpyxl;
        # values as openpyxl gives them: numbers, dates (datetime), empty cells as None
        try:
            workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
            sheet = workbook.get_sheet_by_index(0)
            rows = sheet.to_python(skip_empty_area=False, nrows=MAX_READ_ROWS + 1)
        except Exception as exc:  # not a workbook, or a damaged one
            raise UnreadableFile(str(exc)) from exc
        return [[None if cell == "" else cell for cell in row] for row in rows]
    if name.endswith(".csv"):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise UnreadableFile("not UTF-8 or GB18030 text")
        try:
            return list(itertools.islice(csv.reader(io.StringIO(text)), MAX_READ_ROWS + 1))
        except csv.Error as exc:
            raise UnreadableFile(str(exc)) from exc
    raise UnreadableFile("not .xlsx or .csv")
