"""Column kinds of a table: which columns the model sees as numeric, categorical, or not at all.

Example:
    >>> import pandas as pd
    >>> schema = infer_schema(pd.DataFrame({"age": [31.0, 45.0], "sex": ["F", "M"]}))
    >>> schema.numeric, schema.categorical
    (['age'], ['sex'])
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.csv_numbers import MAX_STRAY_WORDS
from seqdiff.tabular.read_options import NA_VALUES, na_values_flag, shell_word

ColumnKind = Literal["numeric", "categorical", "passthrough"]
KINDS: tuple[str, ...] = ("numeric", "categorical", "passthrough")

MIN_IDENTIFIER_VALUES = 50  # an identifier column has at least this many values, all distinct
# Among a string column's numbers, more distinct words than MAX_STRAY_WORDS are still stray words (named,
# not read as text) when they are at most this many and fill at most this share of its filled cells.
MAX_LISTED_WORDS = 10
MAX_STRAY_SHARE = 0.2
NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"  # a number written as text

TableLike = pd.DataFrame | pa.Table | pa.RecordBatch


def is_temporal(arrow_type: pa.DataType) -> bool:
    """True for the date/time types stored as one integer per cell (encoded as numeric)."""
    return (
        pa.types.is_timestamp(arrow_type)
        or pa.types.is_date(arrow_type)
        or pa.types.is_time(arrow_type)
        or pa.types.is_duration(arrow_type)
    )


def _possible_kinds(arrow_type: pa.DataType) -> tuple[str, ...]:
    """Kinds a column of this Arrow type can be modelled as; the first is the default."""
    if pa.types.is_null(arrow_type):
        return KINDS  # an all-null column carries no type information
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return ("categorical",)
    if pa.types.is_boolean(arrow_type) or pa.types.is_dictionary(arrow_type):
        return ("categorical",)
    if pa.types.is_floating(arrow_type):
        return ("numeric", "categorical")
    if pa.types.is_decimal(arrow_type):  # a database's exact numbers: prices, amounts
        return ("numeric",)
    if pa.types.is_integer(arrow_type):
        return ("categorical", "numeric")
    if is_temporal(arrow_type):
        return ("numeric",)
    return ("passthrough",)


def to_arrow(data: TableLike, source: str = "table") -> pa.Table:
    """Return `data` (DataFrame, Arrow table or record batch) as an Arrow table with unique string names.

    Raises SeqdiffError naming `source` for duplicate column names or a column Arrow cannot type.

    Example:
        >>> to_arrow(pd.DataFrame({"a": [1, 2]})).schema.field("a").type
        DataType(int64)
    """
    names = [str(name) for name in data.columns] if isinstance(data, pd.DataFrame) else data.schema.names
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise SeqdiffError(f"{source}: duplicate column name(s): {', '.join(map(repr, duplicated))}")
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if not names:  # scikit-learn's words (an Arrow table of no columns has no rows either)
        raise SeqdiffError(
            f"{source}: 0 feature(s) (shape=({len(data)}, 0)) while a minimum of 1 is required."
        )
    arrays = []
    for name, (_, series) in zip(names, data.items(), strict=True):
        try:
            arrays.append(pa.array(series, from_pandas=True))
        except pa.ArrowException as exc:
            if pd.api.types.is_complex_dtype(series.dtype):
                raise SeqdiffError(f"{source}: column {name!r}: Complex data not supported") from exc
            message = _mixed_types(series) or f"cannot read its values ({str(exc).splitlines()[0]})"
            raise SeqdiffError(f"{source}: column {name!r}: {message}") from exc
    return pa.Table.from_arrays(arrays, names=names)


def _mixed_types(series: pd.Series) -> str | None:
    """What a column of objects of several Python types holds (a spreadsheet's numbers among words,
    read by pandas as they came), and how to give it one type; None for one type.

    Example:
        >>> _mixed_types(pd.Series([1.5, "n/a", 2, None, "n/a"], dtype=object))
        "holds 2 numbers and 2 text values ('n/a'): give it one type, e.g. pd.to_numeric(column, errors='coerce') reads the text as missing, column.astype(str) all as text"
    """
    values = series.dropna()
    text = [v for v in values if isinstance(v, str)]
    numbers = sum(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not text or not numbers:
        return None
    shown = ", ".join(repr(w) for w in list(dict.fromkeys(text))[:MAX_LISTED_WORDS])
    return (
        f"holds {numbers:,} numbers and {len(text):,} text values ({shown}): give it one type, e.g. "
        "pd.to_numeric(column, errors='coerce') reads the text as missing, column.astype(str) all as text"
    )


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its name, how it is modelled, its Arrow type as text (e.g. ``"large_string"``), and
    whether it is an identifier (a passthrough column of distinct strings or integers)."""

    name: str
    kind: ColumnKind
    arrow_type: str
    identifier: bool = False


@dataclass(frozen=True)
class Schema:
    """The columns of a table, in order, with their kinds. JSON-serialisable via `to_dict`/`from_dict`.

    Example:
        >>> s = Schema([ColumnSpec("x", "numeric", "double")])
        >>> Schema.from_dict(s.to_dict()) == s
        True
    """

    columns: list[ColumnSpec]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def _of_kind(self, kind: str) -> list[str]:
        return [c.name for c in self.columns if c.kind == kind]

    @property
    def numeric(self) -> list[str]:
        return self._of_kind("numeric")

    @property
    def categorical(self) -> list[str]:
        return self._of_kind("categorical")

    @property
    def passthrough(self) -> list[str]:
        """Columns never modelled and copied unchanged (identifiers, nested, binary, null-typed, ...)."""
        return self._of_kind("passthrough")

    @property
    def identifiers(self) -> list[str]:
        """Passthrough columns of strings or integers, every value distinct (`infer_schema`)."""
        return [c.name for c in self.columns if c.identifier]

    @property
    def modelled(self) -> list[str]:
        """Numeric and categorical columns, in table order."""
        return [c.name for c in self.columns if c.kind != "passthrough"]

    def kind_of(self, name: str) -> ColumnKind:
        for column in self.columns:
            if column.name == name:
                return column.kind
        raise SeqdiffError(f"column {name!r} is not in the schema (columns: {', '.join(self.names)})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [
                {"name": c.name, "kind": c.kind, "arrow_type": c.arrow_type}
                | ({"identifier": True} if c.identifier else {})
                for c in self.columns
            ]
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Schema:
        columns = [
            ColumnSpec(c["name"], c["kind"], c["arrow_type"], c.get("identifier", False))
            for c in state["columns"]
        ]
        for column in columns:
            if column.kind not in KINDS:
                raise SeqdiffError(f"schema: column {column.name!r}: unknown kind {column.kind!r}")
        return cls(columns)

    def check(self, data: TableLike, source: str = "table") -> None:
        """Raise SeqdiffError unless every modelled column is present in `data` with a compatible type.

        Passthrough columns and extra columns are not required; an all-null column fits any kind.

        Example:
            >>> s = infer_schema(pd.DataFrame({"x": [1.5, 2.5]}))
            >>> s.check(pd.DataFrame({"x": ["a", "b"]}), source="new.csv")
            Traceback (most recent call last):
            ...
            seqdiff.errors.SeqdiffError: new.csv: column 'x' is numeric in the model's schema but has type large_string here
        """
        table = to_arrow(data, source)
        types = dict(zip(table.schema.names, table.schema.types, strict=True))
        for column in self.columns:
            if column.kind == "passthrough":
                continue
            if column.name not in types:
                raise SeqdiffError(
                    f"{source}: column {column.name!r} is missing "
                    f"(the model was trained on columns {', '.join(self.modelled)})"
                    f"{_close_name(column.name, table.column_names)}"
                )
            arrow_type = types[column.name]
            if column.kind not in _possible_kinds(arrow_type):
                raise SeqdiffError(
                    f"{source}: column {column.name!r} is {column.kind} in the model's schema "
                    f"but has type {arrow_type} here{_words_among_numbers(table.column(column.name))}"
                )


def _close_name(name: str, names: list[str]) -> str:
    """``; this file has 'Age '`` for the column of `names` that `name` most likely is (another case,
    spaces around it, a typo), else nothing.

    Example:
        >>> _close_name("age", ["Age ", "income"]), _close_name("income", ["incme"]), _close_name("x", ["y"])
        ("; this file has 'Age '", "; this file has 'incme'", '')
    """
    same = [n for n in names if n.strip().casefold() == name.strip().casefold()]
    close = same or difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f"; this file has {close[0]!r}" if close else ""


def _words_among_numbers(column: pa.ChunkedArray) -> str:
    """For a text column that a model holds as numbers: the words in it that are not numbers (up to
    MAX_STRAY_WORDS) and the ``--na-values`` that reads them as missing; else nothing."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return ""
    words, _, numbers, _ = _stray_words(column)
    if not words or len(words) > MAX_STRAY_WORDS or not numbers:
        return ""
    return (
        f": {', '.join(map(repr, words))} among its numbers (to read them as missing, CSV or Excel: "
        f"{na_values_flag([*NA_VALUES, *sorted(words)])})"
    )


def infer_schema(
    table: TableLike,
    categorical: Iterable[str] = (),
    numeric: Iterable[str] = (),
    max_int_categories: int = 20,
    source: str = "table",
) -> Schema:
    """Decide each column's kind from its Arrow type and values.

    Rules, in order:

    - user overrides win: names in `categorical` / `numeric` get that kind (an unknown name, a name in
      both lists, or a type that cannot take the kind, e.g. a string column as numeric, is an error);
    - string / large_string / bool / dictionary -> categorical;
    - floating point and decimal -> numeric;
    - identifiers -> passthrough (`Schema.identifiers`): string or integer columns with at least
      MIN_IDENTIFIER_VALUES values, every one distinct (an ID, a name): there is nothing to learn
      from them, and a missing one has no value to impute; an override models one;
    - integers -> categorical if they have at most `max_int_categories` distinct observed values,
      else numeric (passthrough for unsigned ones beyond a signed 64-bit integer: keys, hashes);
    - timestamp / date / time / duration -> numeric (encoded as their integer storage: e.g. nanoseconds
      since the epoch for ``timestamp[ns]``, days for ``date32``; decoded back to the same type);
    - everything else (list / struct / map, binary, null-typed, ...) -> passthrough: never
      modelled, copied unchanged.

    Duplicate column names, a table with zero rows, and a string column of numbers but for a few
    distinct words (`check_stray_tokens`) are SeqdiffErrors naming `source`.

    Example:
        >>> df = pd.DataFrame({"n": [1, 2, 3], "x": [0.5, 1.5, 2.5], "s": ["a", "b", "a"]})
        >>> [c.kind for c in infer_schema(df, numeric=["n"]).columns]
        ['numeric', 'numeric', 'categorical']
    """
    table = to_arrow(table, source)
    if table.num_rows == 0:
        raise SeqdiffError(f"{source}: the table has no rows")
    overrides = {name: "categorical" for name in categorical}
    for name in numeric:
        if name in overrides:
            raise SeqdiffError(f"{source}: column {name!r} is listed as both categorical and numeric")
        overrides[name] = "numeric"
    unknown = sorted(set(overrides) - set(table.schema.names))
    if unknown:
        raise SeqdiffError(f"{source}: unknown column(s) {', '.join(map(repr, unknown))} in the overrides")

    specs = []
    for field in table.schema:
        possible = _possible_kinds(field.type)
        if field.name in overrides:
            kind = overrides[field.name]
            if kind not in possible or pa.types.is_null(field.type):
                raise SeqdiffError(
                    f"{source}: column {field.name!r} has type {field.type} and cannot be {kind}"
                )
            if kind == "numeric" and _beyond_int64(table.column(field.name)):
                raise SeqdiffError(
                    f"{source}: column {field.name!r} holds whole numbers beyond a 64-bit integer (keys or "
                    "hashes) and cannot be numeric"
                )
        elif _is_identifier(table.column(field.name)):
            specs.append(ColumnSpec(field.name, "passthrough", str(field.type), identifier=True))
            continue
        elif pa.types.is_integer(field.type):
            distinct = pc.count_distinct(table.column(field.name)).as_py()
            if distinct <= max_int_categories:
                kind = "categorical"
            else:  # keys or hashes beyond a 64-bit integer are not numbers to model
                kind = "passthrough" if _beyond_int64(table.column(field.name)) else "numeric"
        elif pa.types.is_null(field.type):
            kind = "passthrough"
        else:
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                check_stray_tokens(field.name, table.column(field.name), max_int_categories, source)
            kind = possible[0]
        specs.append(ColumnSpec(field.name, kind, str(field.type)))
    return Schema(specs)


def _beyond_int64(column: pa.ChunkedArray) -> bool:
    """Whether an unsigned 64-bit column holds numbers beyond a signed 64-bit integer, the type numbers
    are modelled in."""
    return pa.types.is_uint64(column.type) and (pc.max(column).as_py() or 0) >= 2**63


def _is_identifier(column: pa.ChunkedArray) -> bool:
    """A string or integer column with at least MIN_IDENTIFIER_VALUES values, every one distinct."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        if not pa.types.is_integer(column.type):
            return False
    values = len(column) - column.null_count
    return values >= MIN_IDENTIFIER_VALUES and pc.count_distinct(column).as_py() == values


def check_stray_tokens(name: str, column: pa.ChunkedArray, max_int_categories: int, source: str) -> None:
    """A one-line SeqdiffError for a string column whose values are numbers (more than
    `max_int_categories` distinct ones: a numeric column) but for a few words: at most MAX_STRAY_WORDS
    distinct ones (a placeholder for missing values), or at most MAX_LISTED_WORDS in at most
    MAX_STRAY_SHARE of the filled cells (a lab's ``<0.5``, ``<0.1``, ``>100`` beyond its detection
    limits); it names the column, the words and the fixes.

    Example:
        >>> column = pa.chunked_array([[str(x) for x in range(30)] + ["unknown", "unknown", "n.a."]])
        >>> check_stray_tokens("age", column, 20, "t.csv")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: t.csv: column 'age' holds numbers but for 3 cells of 'unknown', 'n.a.': read them as missing (CSV or Excel: --na-values '?' - NA N/A n/a null NULL NaN nan n.a. unknown) or model the column as categorical (--categorical age)
    """
    tokens, cells, numbers, filled = _stray_words(column)
    if not tokens or not few_words(len(tokens), cells, filled) or numbers <= max_int_categories:
        return
    if tokens == [name]:
        raise SeqdiffError(
            f"{source}: column {name!r} holds numbers but for {cells:,} cell(s) of its own name: the header "
            "repeated inside the table (files joined with their headers?); delete those rows"
        )
    raise SeqdiffError(
        f"{source}: column {name!r} holds numbers but for {cells:,} cells of "
        f"{', '.join(map(repr, tokens))}: read them as missing (CSV or Excel: "
        f"{na_values_flag([*NA_VALUES, *sorted(tokens)])}) or model the column as categorical "
        f"(--categorical {shell_word(name)})"
    )


def few_words(kinds: int, cells: int, filled: int) -> bool:
    """Whether `kinds` distinct words in `cells` of a column's `filled` cells are a few stray words among
    its numbers (placeholders, detection limits), by `check_stray_tokens`' rule; not text."""
    return 0 < kinds <= MAX_STRAY_WORDS or (
        0 < kinds <= MAX_LISTED_WORDS and cells <= MAX_STRAY_SHARE * filled
    )


def _stray_words(column: pa.ChunkedArray) -> tuple[list[str], int, int, int]:
    """(the distinct values of a text column that are not numbers, in order of appearance; the cells
    they fill; how many distinct numbers it holds; its filled cells)."""
    values = pc.value_counts(column.drop_null())
    if len(values) == 0:
        return [], 0, 0, 0
    words, counts = values.field("values"), values.field("counts")
    numbers = pc.match_substring_regex(words, NUMBER)
    stray = pc.invert(numbers)
    cells = pc.sum(pc.filter(counts, stray)).as_py() or 0
    return pc.filter(words, stray).to_pylist(), cells, pc.sum(numbers).as_py() or 0, pc.sum(counts).as_py()
