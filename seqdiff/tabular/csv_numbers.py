"""How a CSV file writes its numbers: the decimal mark (``3.14`` or ``3,14``) and digit groups
(``1,234.5``, ``1.234,5``, ``1 234,5``, ``1'234.5``), read from the file's first lines.

`decimal_mark` and `grouped_columns` look at sampled records (a header and rows of fields, as
`seqdiff.tabular.files` samples them); `ungroup` turns a column of grouped numbers, read as text, into
numbers.

Example:
    >>> header, rows = ["kg", "income"], [["70,5", "1.250"], ["3,25", "12.500,75"]]
    >>> decimal_mark(header, rows)
    ','
    >>> grouped_columns(header, rows, ",")
    {'income': ('.', 'float64')}
"""

from __future__ import annotations

import re
import shlex

import pyarrow as pa
import pyarrow.compute as pc

from seqdiff.errors import SeqdiffError

# Thousands separators besides the other mark: a space, a no-break space and a narrow no-break space
# (French and SI style), an apostrophe (Swiss style).
SPACE_GROUPS = (" ", "\u00a0", "\u202f", "'")
# Distinct words tolerated, and reported, among a column's numbers (here and in
# `seqdiff.tabular.schema.check_stray_tokens`): more, and the column is text, not numbers.
MAX_STRAY_WORDS = 3
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = {".": re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?"), ",": re.compile(r"[+-]?\d*,(\d+)")}


def _grouped(decimal: str, group: str) -> re.Pattern[str]:
    """Numbers written with digit groups of three split by `group` (the first not led by a zero: ``0.250``
    is no group), and an optional `decimal` part."""
    return re.compile(rf"[+-]?[1-9]\d{{0,2}}(?:{re.escape(group)}\d{{3}})+(?:{re.escape(decimal)}\d*)?")


def _column_mark(values: list[str]) -> str | None:
    """The decimal mark a column's values are written with: "." or ",", None when they are not all numbers
    of one mark, are whole numbers, or could be thousands groups (``1,250``). A grouped number with
    both marks (``1,234.5``, ``1.234,5``) shows its decimal mark: the last one."""
    for mark, pattern in _DECIMAL.items():
        grouped = _grouped(mark, "," if mark == "." else ".")
        matches = [pattern.fullmatch(v) for v in values]
        if not all(
            m or _INTEGER.fullmatch(v) or grouped.fullmatch(v) for m, v in zip(matches, values, strict=True)
        ):
            continue
        decimals = [m for m in matches if m]
        if any(mark in v and grouped.fullmatch(v) for v in values):
            return mark
        if decimals and (mark == "." or any(len(m[1]) != 3 for m in decimals)):
            return mark
    return None


def _columns(header: list[str], rows: list[list[str]], missing: set[str]) -> dict[str, list[str]]:
    """Each column's sampled values, stripped, besides missing ones."""
    return {
        name: [v for v in (r[j].strip() for r in rows if j < len(r)) if v and v not in missing]
        for j, name in enumerate(header)
    }


def decimal_mark(
    header: list[str], rows: list[list[str]], missing: set[str] = frozenset(), source: str = ""
) -> str:
    """The decimal mark of sampled records: a comma when a column's values (besides `missing` ones) are
    all numbers and some are written like ``3,14`` (not only like ``1,250``, which could be a thousands
    group) or ``1.234,5``; else a point. When another column's are written like ``3.14``, a one-line
    SeqdiffError names both (give --decimal).

    Example:
        >>> decimal_mark(["kg", "m"], [["70,5", "1.5"]], source="t.csv")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: t.csv: cannot tell the decimal mark: column 'kg' writes 70,5 and column 'm' 1.5; give --decimal
    """
    columns: dict[str, tuple[str, str]] = {}  # mark -> (column, an example value)
    for name, values in _columns(header, rows, missing).items():
        mark = _column_mark(values)
        if mark is not None and mark not in columns:
            columns[mark] = (name, next(v for v in values if mark in v))
    if len(columns) == 2:
        (comma, comma_value), (point, point_value) = columns[","], columns["."]
        raise SeqdiffError(
            f"{source}: cannot tell the decimal mark: column {comma!r} writes {comma_value} and column "
            f"{point!r} {point_value}; give --decimal"
        )
    return "," if "," in columns else "."


def grouped_columns(
    header: list[str], rows: list[list[str]], decimal: str, missing: set[str] = frozenset()
) -> dict[str, tuple[str, str]]:
    """The columns whose sampled numbers are written with digit groups (``1,234.5`` when `decimal` is a
    point): name -> (the group separator, "int64" or "float64"). A column qualifies when some of its
    values are grouped and the others are plain numbers, but for at most `MAX_STRAY_WORDS` distinct
    words in fewer than half its cells (which `ungroup` then reports).

    Example:
        >>> grouped_columns(["n", "id"], [["1,250", "7"], ["980", "8"], ["12,000", "9"]], ".")
        {'n': (',', 'int64')}
        >>> grouped_columns(["size"], [["small"], ["large"], ["1,000"]], ".")  # mostly words: text
        {}
    """
    plain = re.compile(rf"{_INTEGER.pattern}|{_DECIMAL[decimal].pattern}")
    found = {}
    for name, values in _columns(header, rows, missing).items():
        for group in ("," if decimal == "." else ".", *SPACE_GROUPS):
            grouped = _grouped(decimal, group)
            n_grouped = sum(1 for v in values if grouped.fullmatch(v))
            stray = [v for v in values if not grouped.fullmatch(v) and not plain.fullmatch(v)]
            words = set(stray)
            if n_grouped and len(words) <= MAX_STRAY_WORDS and 2 * len(stray) < len(values):
                whole = not any(decimal in v for v in values if v not in words)
                found[name] = (group, "int64" if whole else "float64")
                break
    return found


def ungroup(
    column: pa.ChunkedArray | pa.Array,
    name: str,
    group: str,
    decimal: str,
    type_: str | None = None,
    source: str = "",
    na_values: tuple[str, ...] = (),
) -> pa.ChunkedArray | pa.Array:
    """The text column `name` of grouped numbers (`grouped_columns`) as numbers: of `type_`, or when None,
    int64 unless a value has a fraction. A one-line SeqdiffError names the values that are not numbers
    and the ``--na-values`` (besides `na_values`) that reads them as missing, or a fraction in an int64
    column (a stream's later rows).

    Example:
        >>> ungroup(pa.array(["1.234,5", None, "-12"]), "kg", ".", ",").to_pylist()
        [1234.5, None, -12.0]
        >>> ungroup(pa.array(["1,250", "none"]), "n", ",", ".", source="t.csv", na_values=("?",))
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: t.csv: column 'n' holds numbers written like 1,250 but for 'none': read them as missing (--na-values '?' none)
    """
    text = pc.replace_substring(pc.utf8_trim_whitespace(column), group, "")
    if decimal != ".":
        text = pc.replace_substring(text, decimal, ".")
    bad = pc.invert(pc.fill_null(pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)$"), True))
    if pc.any(bad).as_py():
        words = list(dict.fromkeys(pc.filter(column, bad).to_pylist()))
        shown = ", ".join(map(repr, words[:MAX_STRAY_WORDS])) + (
            ", ..." if len(words) > MAX_STRAY_WORDS else ""
        )
        example = next(v for v in pc.filter(column, pc.invert(bad)).to_pylist() if v and group in v)
        quoted = " ".join(shlex.quote(t) for t in dict.fromkeys([*na_values, *words]))
        raise SeqdiffError(
            f"{source}: column {name!r} holds numbers written like {example} but for {shown}: read them "
            f"as missing (--na-values {quoted})"
        )
    fractions = pc.match_substring(text, ".")
    if type_ == "int64" and pc.any(fractions).as_py():
        value = pc.filter(column, pc.fill_null(fractions, False))[0].as_py()
        raise SeqdiffError(
            f"{source}: column {name!r}: {value} has a fraction, but the column's numbers in the file's "
            "first lines were whole (read as integers)"
        )
    return pc.cast(text, type_ or ("float64" if pc.any(fractions).as_py() else "int64"))
