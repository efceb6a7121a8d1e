"""How a CSV file writes its numbers: the decimal mark (``3.14`` or ``3,14``), digit groups
(``1,234.5``, ``1.234,5``, ``1 234,5``, ``1'234.5``) and unit signs (``$1,250``, ``1.234,50 €``,
``12%``), read from the file's first lines.

`decimal_mark` and `number_styles` look at sampled records (a header and rows of fields, as
`seqdiff.tabular.csv_sniff` samples them); `to_numbers` turns a column of such numbers, read as text,
into numbers.

Example:
    >>> header = ["kg", "income", "rate"]
    >>> rows = [["70,5", "1.250 €", "5%"], ["3,25", "12.500,75 €", "12%"]]
    >>> decimal_mark(header, rows)
    ','
    >>> styles = number_styles(header, rows, ",")
    >>> styles["income"]
    NumberStyle(group='.', prefix='', suffix='€', type_='float64')
    >>> styles["rate"]
    NumberStyle(group=None, prefix='', suffix='%', type_='int64')
"""

from __future__ import annotations

import re
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.read_options import na_values_flag

# Thousands separators besides the other mark: a space, a no-break space and a narrow no-break space
# (French and SI style), an apostrophe (Swiss style).
SPACE_GROUPS = (" ", "\u00a0", "\u202f", "'")
# Distinct words tolerated, and reported, among a column's numbers (here and in
# `seqdiff.tabular.schema.check_stray_tokens`): more, and the column is text, not numbers.
MAX_STRAY_WORDS = 3
# Currency signs written before or after amounts; a percent sign follows its number. A space may stand
# between sign and number (``1 234,50 €``): a plain, no-break or narrow no-break space.
CURRENCIES = "$€£¥₹₩₽₺₪"
_SPACE = "[ \u00a0\u202f]"
# Accounting's negative numbers: ``(1,250)`` or ``($1,250)`` for -1,250.
_ACCOUNTING = re.compile(r"^\((.*)\)$")
_UNIT = re.compile(
    rf"(?P<sign>[+-]?)(?P<prefix>[{CURRENCIES}]?){_SPACE}?"
    rf"(?P<number>.*?){_SPACE}?(?P<suffix>%|[{CURRENCIES}])?",
    re.DOTALL,  # any value matches, also text with a line break in it
)
_INTEGER = re.compile(r"[+-]?\d+")
_PADDED = re.compile(r"[+-]?0\d+")
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


class NumberStyle(NamedTuple):
    """How a CSV column writes numbers that Arrow does not read as numbers: the digit group separator
    (None: no groups), the unit sign before and after each number ("$" in ``$1,250``, "%" in ``12%``;
    "" for none) and the type the sampled numbers fit ("int64" or "float64")."""

    group: str | None
    prefix: str
    suffix: str
    type_: str


def _unit(values: list[str]) -> tuple[str, str]:
    """The (prefix, suffix) unit signs a column's values carry: ("", "") when none do, or when they
    carry different ones (``$5`` and ``5 €``: text, not numbers)."""
    units = {(m["prefix"], m["suffix"] or "") for m in map(_UNIT.fullmatch, values)} - {("", "")}
    return units.pop() if len(units) == 1 else ("", "")


def _without_unit(value: str, unit: tuple[str, str]) -> str:
    """`value` with the `unit` signs around it removed (``-$1,250`` -> ``-1,250``); as it is when it
    carries no unit or another."""
    m = _UNIT.fullmatch(value)
    return m["sign"] + m["number"] if unit != ("", "") and (m["prefix"], m["suffix"] or "") == unit else value


def sampled_values(rows: list[list[str]], j: int, missing: set[str]) -> list[str]:
    """Column `j`'s values in sampled rows, stripped of spaces, besides empty and `missing` ones.

    Example:
        >>> sampled_values([["1", " 2 "], ["3", "?"], ["4"]], 1, {"?"})
        ['2']
    """
    return [v for v in (r[j].strip() for r in rows if j < len(r)) if v and v not in missing]


def _columns(
    header: list[str], rows: list[list[str]], missing: set[str]
) -> dict[str, tuple[tuple[str, str], list[str]]]:
    """Each column's unit signs (`_unit`) and its sampled values, stripped of spaces and those signs,
    a negative number in parentheses with a minus sign, besides missing ones."""
    columns = {}
    for j, name in enumerate(header):
        values = [_ACCOUNTING.sub(r"-\1", v) for v in sampled_values(rows, j, missing)]
        unit = _unit(values)
        columns[name] = (unit, [_without_unit(v, unit) for v in values])
    return columns


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
    for name, (_, values) in _columns(header, rows, missing).items():
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


def number_styles(
    header: list[str],
    rows: list[list[str]],
    decimal: str,
    missing: set[str] = frozenset(),
    plain: bool = False,
) -> dict[str, NumberStyle]:
    """The columns whose sampled numbers are written with digit groups (``1,234.5`` when `decimal` is a
    point) or unit signs (``$1,250``, ``12%``), and with `plain` columns of plain numbers too: name ->
    their `NumberStyle`. A column qualifies when its values are such numbers and plain ones, but for at
    most `MAX_STRAY_WORDS` distinct words in fewer than half its cells (which `to_numbers` reports).

    Example:
        >>> number_styles(["n", "id"], [["1,250", "7"], ["980", "8"], ["12,000", "9"]], ".")
        {'n': NumberStyle(group=',', prefix='', suffix='', type_='int64')}
        >>> number_styles(["price"], [["-$5.5"], ["$12"], ["$3,100"]], ".")["price"].prefix
        '$'
        >>> number_styles(["size"], [["small"], ["large"], ["1,000"]], ".")  # mostly words: text
        {}
    """
    number = re.compile(rf"{_INTEGER.pattern}|{_DECIMAL[decimal].pattern}")
    found = {}
    for name, ((prefix, suffix), values) in _columns(header, rows, missing).items():
        # Groups first: numbers below a thousand among grouped ones are plain, not the reverse.
        for group in ("," if decimal == "." else ".", *SPACE_GROUPS, None):
            grouped = group and _grouped(decimal, group)
            n_grouped = sum(1 for v in values if grouped and grouped.fullmatch(v))
            stray = [v for v in values if not (grouped and grouped.fullmatch(v)) and not number.fullmatch(v)]
            words = set(stray)
            styled = n_grouped if group else prefix or suffix or plain
            if styled and len(words) <= MAX_STRAY_WORDS and 2 * len(stray) < len(values):
                whole = not any(decimal in v for v in values if v not in words)
                found[name] = NumberStyle(group, prefix, suffix, "int64" if whole else "float64")
                break
    return found


def digit_codes(header: list[str], rows: list[list[str]], missing: set[str] = frozenset()) -> list[str]:
    """The columns whose sampled values are whole numbers that are codes: some written with leading
    zeros (``01001``: ZIP codes, sample numbers ``007``) or longer than a 64-bit integer holds (20-digit
    barcodes). They are text: as numbers ``01001`` would be written back as ``1001``, and 20 digits
    rounded to a float's 17.

    Example:
        >>> rows = [["01001", "7", "0.5", "12345678901234567890"], ["94105", "12", "07.5", "1"]]
        >>> digit_codes(["zip", "n", "kg", "barcode"], rows)
        ['zip', 'barcode']
    """
    found = []
    for j, name in enumerate(header):
        values = sampled_values(rows, j, missing)
        if all(_INTEGER.fullmatch(v) for v in values) and any(
            _PADDED.fullmatch(v) or _too_long(v) for v in values
        ):
            found.append(name)
    return found


def _too_long(whole: str) -> bool:
    """Whether a whole number is beyond a 64-bit integer (its digits counted before it is parsed: Python
    refuses to parse one of thousands of digits)."""
    return len(whole.lstrip("+-")) > 19 or not -(2**63) <= int(whole) < 2**63


def numbers_named_by_numbers(header: list[str], numeric: dict[str, NumberStyle], decimal: str) -> list[str]:
    """The names in `header` that are numbers over columns of numbers: over the columns in `numeric`
    (`number_styles` with ``plain``).

    Example:
        >>> header, rows = ["39", "clerk", "2024"], [["50", "nurse", "x"]]
        >>> numbers_named_by_numbers(header, number_styles(header, rows, ".", plain=True), ".")
        ['39']
    """
    number = re.compile(rf"{_INTEGER.pattern}|{_DECIMAL[decimal].pattern}")
    return [name.strip() for name in header if number.fullmatch(name.strip()) and name in numeric]


def blank_to_null(text: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """`text` with its empty strings missing.

    Example:
        >>> blank_to_null(pa.array(["a", ""])).to_pylist()
        ['a', None]
    """
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def to_numbers(
    column: pa.ChunkedArray | pa.Array,
    name: str,
    style: NumberStyle,
    decimal: str,
    *,
    stream: bool = False,
    source: str = "",
    na_values: tuple[str, ...] = (),
) -> pa.ChunkedArray | pa.Array:
    """The text column `name` of numbers written in `style` (`number_styles`) as numbers: in a `stream`
    (whose batches share a schema) of the style's type, else int64 unless a value has a fraction. A
    one-line SeqdiffError names the values that are not numbers and the ``--na-values`` (besides
    `na_values`) that reads them as missing, or a fraction in an int64 column (a stream's later rows).

    Example:
        >>> kg = NumberStyle(".", "", "", "float64")
        >>> to_numbers(pa.array(["1.234,5", None, "-12"]), "kg", kg, ",").to_pylist()
        [1234.5, None, -12.0]
        >>> usd = NumberStyle(",", "$", "", "int64")
        >>> to_numbers(pa.array(["-$1,250", "$ 7", "($12)"]), "usd", usd, ".").to_pylist()
        [-1250, 7, -12]
        >>> style = NumberStyle(",", "", "", "int64")
        >>> to_numbers(pa.array(["1,250", "none"]), "n", style, ".", source="t.csv", na_values=("?",))
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: t.csv: column 'n' holds numbers written like 1,250 but for 'none': read them as missing (--na-values '?' none)
    """
    text = blank_to_null(pc.utf8_trim_whitespace(column))
    text = pc.replace_substring_regex(text, _ACCOUNTING.pattern, r"-\1")
    if style.prefix:  # the sign may stand before the unit or after it: -$5, $-5
        text = pc.replace_substring_regex(text, rf"^([+-]?){re.escape(style.prefix)}{_SPACE}?", r"\1")
    if style.suffix:
        text = pc.replace_substring_regex(text, rf"{_SPACE}?{re.escape(style.suffix)}$", "")
    if style.group:
        text = pc.replace_substring(text, style.group, "")
    if decimal != ".":
        text = pc.replace_substring(text, decimal, ".")
    bad = pc.invert(pc.fill_null(pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)$"), True))
    if pc.any(bad).as_py():
        words = list(dict.fromkeys(pc.filter(column, bad).to_pylist()))
        shown = ", ".join(map(repr, words[:MAX_STRAY_WORDS])) + (
            ", ..." if len(words) > MAX_STRAY_WORDS else ""
        )
        signs = [sign for sign in (style.group, style.prefix, style.suffix) if sign]
        good = pc.filter(column, pc.invert(bad)).to_pylist()
        example = next((v for v in good if v and any(s in v for s in signs)), None)
        written = f" written like {example.strip()}" if example else ""
        raise SeqdiffError(
            f"{source}: column {name!r} holds numbers{written} but for {shown}: read them "
            f"as missing ({na_values_flag([*na_values, *words])})"
        )
    fractions = pc.match_substring(text, ".")
    if stream and style.type_ == "int64" and pc.any(fractions).as_py():
        value = pc.filter(column, pc.fill_null(fractions, False))[0].as_py()
        raise SeqdiffError(
            f"{source}: column {name!r}: {value} has a fraction, but the column's numbers in the file's "
            "first lines were whole (read as integers)"
        )
    type_ = style.type_ if stream else "float64" if pc.any(fractions).as_py() else "int64"
    return pc.cast(text, type_)
