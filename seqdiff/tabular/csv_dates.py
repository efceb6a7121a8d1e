"""Dates a CSV file writes in a spreadsheet's local style (``03/15/2024``, ``15.03.2024``,
``15/03/2024 14:30``, ``3/15/2024 2:30:00 PM``), read from the file's first lines. ISO dates
(``2024-03-15``) Arrow reads itself. Two-digit years (``3/15/24``) stay text: their century is a guess,
and a birth year of ``65`` read as 2065 would change a given value.

`date_formats` finds each column's format in sampled records (a header and rows of fields, as
`seqdiff.tabular.csv_sniff` samples them); `to_dates` turns such a column, read as text, into dates, or
timestamps when the format has a time of day.

Example:
    >>> date_formats(["sold", "ref"], [["03/15/2024", "a"], ["04/01/2024", "b"]])
    {'sold': '%m/%d/%Y'}
    >>> to_dates(pa.array(["03/15/2024", None]), "sold", "%m/%d/%Y").to_pylist()
    [datetime.date(2024, 3, 15), None]
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.csv_numbers import sampled_values
from seqdiff.tabular.read_options import na_values_flag

# Day, month and year split by one of / . -, then an optional time of day (hours, minutes, seconds, and
# AM or PM on a 12-hour clock, as US spreadsheets export it).
_DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?: (\d{1,2}):(\d{2})(:\d{2})?(?:( ?)([AaPp][Mm]))?)?")


def _format(values: list[str]) -> str | None:
    """The strptime format every one of `values` is written in, or None: not all such dates, or with and
    without a time, or the order of day and month cannot be told (no day past the 12th). A point
    splits day.month.year, as everywhere it is used."""
    matches = [_DATE.fullmatch(v) for v in values]
    if not values or not all(matches) or len({(m[2], bool(m[5]), bool(m[7]), m[8]) for m in matches}) > 1:
        return None
    first, second = max(int(m[1]) for m in matches), max(int(m[3]) for m in matches)
    sep, time, seconds, meridiem = matches[0][2], matches[0][5], matches[0][7], matches[0][8]
    if second <= 12 and (first > 12 or sep == "."):
        order = f"%d{sep}%m"
    elif first <= 12 < second and sep != ".":
        order = f"%m{sep}%d"
    else:
        return None
    clock = ""
    if time:
        clock = " %H:%M" if meridiem is None else " %I:%M"
        clock += (":%S" if seconds else "") + ("" if meridiem is None else f"{meridiem}%p")
    return f"{order}{sep}%Y{clock}"


def date_formats(header: list[str], rows: list[list[str]], missing: set[str] = frozenset()) -> dict[str, str]:
    """The columns whose sampled values (besides `missing` ones) are all dates in one local style: name
    -> its strptime format (`_format`).

    Example:
        >>> date_formats(["a", "b", "c"], [["15.03.2024", "01/02/2024", "1/13/2024 9:05"]])
        {'a': '%d.%m.%Y', 'c': '%m/%d/%Y %H:%M'}
    """
    found = {}
    for j, name in enumerate(header):
        fmt = _format(sampled_values(rows, j, missing))
        if fmt is not None:
            found[name] = fmt
    return found


def to_dates(
    column: pa.ChunkedArray | pa.Array,
    name: str,
    fmt: str,
    source: str = "",
    na_values: tuple[str, ...] = (),
) -> pa.ChunkedArray | pa.Array:
    """The text column `name` of dates written in `fmt` as date32, or timestamp[s] with a time of day.
    A value that is no such date (a later row's) is a one-line SeqdiffError naming it and the
    ``--na-values`` (besides `na_values`) that reads it as missing.

    Example:
        >>> to_dates(pa.array(["15.03.2024", "soon"]), "due", "%d.%m.%Y", "t.csv")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: t.csv: column 'due' holds dates written like 15.03.2024 but for ...
    """
    text = pc.utf8_trim_whitespace(column)
    stamps = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    bad = pc.and_(pc.is_valid(text), pc.is_null(stamps))
    if pc.any(bad).as_py():
        word = pc.filter(column, bad)[0].as_py()
        example = (
            pc.filter(column, pc.is_valid(stamps))[0].as_py() if pc.any(pc.is_valid(stamps)).as_py() else fmt
        )
        raise SeqdiffError(
            f"{source}: column {name!r} holds dates written like {example} but for {word!r}: read it as "
            f"missing ({na_values_flag([*na_values, word])})"
        )
    return stamps if "%M" in fmt else stamps.cast(pa.date32())
