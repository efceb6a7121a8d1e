"""Excel workbooks (.xlsx) as tables, with openpyxl: one sheet read whole (`read_sheet`), and tables
written as one sheet, batch by batch (`SheetWriter`).

A sheet's first row that is not blank is its header, unless it starts a title (rows of one cell each,
then a blank row, as above a report's table: `title_rows`); blank rows are skipped, as in CSV files. Each
column's type follows its cells: booleans, integers, numbers (integers and fractions), dates with times,
else text. Numbers among words stay text, so that a column of numbers with a few placeholder words is
reported as a CSV column is (`seqdiff.tabular.schema.check_stray_tokens`). Empty cells (also blank
text), Excel's error values (``#N/A``, ``#DIV/0!``, ...), text cells that are one of the `na_values`
and number cells equal to a number among them (`null_numbers`) are missing. A formula is read as the
value Excel last saved for it.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "t.xlsx"
    >>> with SheetWriter(path) as writer:
    ...     writer.write_table(pa.table({"age": [39, None], "job": ["clerk", "?"]}))
    >>> read_sheet(path, na_values=("?",)).to_pydict()
    {'age': [39, None], 'job': ['clerk', None]}
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.read_options import ERROR_VALUES, file_state, null_numbers, title_rows

MAX_ROWS = 1_048_576  # rows of an Excel sheet, its header included
_TYPES = {  # the Arrow type of a column whose cells are all of one Python type
    bool: pa.bool_(),
    int: pa.int64(),
    float: pa.float64(),
    dt.datetime: pa.timestamp("us"),
    dt.time: pa.time64("us"),
    dt.timedelta: pa.duration("us"),
}


def read_sheet(path: str | Path, sheet: str | None = None, na_values: Sequence[str] = ()) -> pa.Table:
    """The sheet `sheet` (None: the first) of the workbook at `path` as a table; a one-line SeqdiffError
    for a file that is not a workbook, an unknown sheet, or a column with cells but no name.

    The last sheet read is kept until the file changes: ``seqdiff impute`` reads it to fit, then to
    impute, and openpyxl reads a sheet cell by cell (seconds per hundred thousand rows). Arrow tables
    are immutable, so the two reads may share one."""
    try:
        state = file_state(path)
    except FileNotFoundError:
        raise SeqdiffError(f"{path}: no such file") from None
    return _read_sheet(*state, sheet, tuple(na_values))


@functools.lru_cache(maxsize=1)
def _read_sheet(
    path: str, mtime_ns: int, size: int, sheet: str | None, na_values: tuple[str, ...]
) -> pa.Table:
    """`read_sheet` of the file at `path`, keyed by its modification time and size as well."""
    # Imported here: a quarter of a second that every seqdiff command would otherwise pay at start-up.
    import openpyxl
    from openpyxl.utils import get_column_letter

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            if sheet is not None and sheet not in book.sheetnames:
                raise SeqdiffError(
                    f"{path}: no sheet {sheet!r}; its sheets: {', '.join(map(repr, book.sheetnames))}"
                )
            rows = list((book[sheet] if sheet else book.worksheets[0]).iter_rows(values_only=True))
        finally:
            book.close()
    except SeqdiffError:
        raise
    except Exception as exc:  # a damaged file can fail anywhere in openpyxl's parser
        raise SeqdiffError(f"{path}: not a readable Excel workbook ({type(exc).__name__}: {exc})") from None
    numbers = [n for n, row in enumerate(rows, 1) if any(cell is not None for cell in row)]
    if not numbers:
        return pa.table({})
    top = numbers[0] - 1
    title = title_rows(
        sum(c is not None and str(c).strip() != "" for c in row) for row in islice(rows, top, None)
    )
    numbers = [n for n in numbers if n > top + title]
    rows = [rows[n - 1] for n in numbers]
    width = max(len(row) for row in rows)
    header, body = rows[0], [row + (None,) * (width - len(row)) for row in rows[1:]]
    missing = {"", *(token.strip() for token in na_values), *ERROR_VALUES}
    names, arrays = [], []
    for j, cells in enumerate(zip(*body, strict=True) if body else [()] * width):
        name = header[j] if j < len(header) else None
        if name is None:
            if any(cell is not None for cell in cells):
                raise SeqdiffError(
                    f"{path}: column {get_column_letter(j + 1)} has cells but no name in row {numbers[0]}, "
                    "the first that is not blank; the header must be the sheet's first row"
                )
            continue
        names.append(str(name))
        arrays.append(null_numbers(_column(cells, missing), na_values))
    return pa.Table.from_arrays(arrays, names=names)


def _column(cells: Sequence[Any], missing: set[str]) -> pa.Array:
    """One column's cells as an Arrow array of the type they share (see the module docstring)."""
    values = [None if isinstance(v, str) and v.strip() in missing else v for v in cells]
    values = [dt.datetime.combine(v, dt.time()) if type(v) is dt.date else v for v in values]
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.nulls(len(values))
    if kinds == {int, float}:
        return pa.array(values, pa.float64())
    if len(kinds) == 1 and (kind := kinds.pop()) in _TYPES:
        return pa.array(values, _TYPES[kind])
    return pa.array([None if v is None else _text(v) for v in values], pa.string())


def _text(value: Any) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


class SheetWriter:
    """Write tables of one schema, in order, as the rows of one sheet of a new workbook at `path` (saved
    at the end of the ``with`` block). Dates, times, numbers and booleans are written as Excel's own
    values, missing cells and NaN as empty cells, other values as text. A one-line SeqdiffError past
    Excel's MAX_ROWS rows, or for an infinite number or a time zone, which Excel cannot hold."""

    def __init__(self, path: str | Path, sheet: str = "imputed"):
        import openpyxl  # as in read_sheet

        self.path, self.rows = Path(path), 0
        self._book = openpyxl.Workbook(write_only=True)
        self._sheet = self._book.create_sheet(sheet)

    def __enter__(self) -> SheetWriter:
        return self

    def write_table(self, table: pa.Table) -> None:
        if self.rows == 0:
            self._sheet.append(table.column_names)
            self.rows = 1
        if self.rows + table.num_rows > MAX_ROWS:
            raise SeqdiffError(
                f"{self.path}: more than {MAX_ROWS - 1:,} rows do not fit an Excel sheet; "
                "write Parquet or CSV"
            )
        columns = [
            [_cell(v, table.column_names[j], self.path) for v in c.to_pylist()]
            for j, c in enumerate(table.columns)
        ]
        for row in zip(*columns, strict=True):
            self._sheet.append(row)
        self.rows += table.num_rows

    def __exit__(self, kind: type | None, *exc: object) -> None:
        if kind is None:
            self._book.save(self.path)
        else:  # ends the sheet's row stream; nothing is saved
            self._sheet.close()


def _cell(value: Any, column: str, path: Path) -> Any:
    """A value as Excel holds it (see `SheetWriter`)."""
    if value is None or isinstance(value, bool | int | str | Decimal | dt.date | dt.time | dt.timedelta):
        if isinstance(value, dt.datetime | dt.time) and value.tzinfo is not None:
            raise SeqdiffError(
                f"{path}: column {column!r} has time zones, which Excel cannot hold; write Parquet or CSV"
            )
        return value
    if isinstance(value, float):
        if math.isinf(value):
            raise SeqdiffError(
                f"{path}: column {column!r} holds {value}, which Excel cannot; write Parquet or CSV"
            )
        return None if math.isnan(value) else value
    return str(value)
