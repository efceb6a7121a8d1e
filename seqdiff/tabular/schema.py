"""Column kinds of a table: which columns the model sees as numeric, categorical, or not at all.

Example:
    >>> import pandas as pd
    >>> schema = infer_schema(pd.DataFrame({"age": [31.0, 45.0], "sex": ["F", "M"]}))
    >>> schema.numeric, schema.categorical
    (['age'], ['sex'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from seqdiff.errors import SeqdiffError

ColumnKind = Literal["numeric", "categorical", "passthrough"]
KINDS: tuple[str, ...] = ("numeric", "categorical", "passthrough")

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
    arrays = []
    for name, (_, series) in zip(names, data.items(), strict=True):
        try:
            arrays.append(pa.array(series, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            message = str(exc).splitlines()[0]
            raise SeqdiffError(f"{source}: column {name!r}: cannot read its values ({message})") from exc
    return pa.Table.from_arrays(arrays, names=names)


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its name, how it is modelled, and its Arrow type as text (e.g. ``"large_string"``)."""

    name: str
    kind: ColumnKind
    arrow_type: str


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
        """Columns never modelled and copied unchanged (nested, binary, null-typed, decimal, ...)."""
        return self._of_kind("passthrough")

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
            "columns": [{"name": c.name, "kind": c.kind, "arrow_type": c.arrow_type} for c in self.columns]
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Schema:
        columns = [ColumnSpec(c["name"], c["kind"], c["arrow_type"]) for c in state["columns"]]
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
        schema = to_arrow(data, source).schema
        types = dict(zip(schema.names, schema.types, strict=True))
        for column in self.columns:
            if column.kind == "passthrough":
                continue
            if column.name not in types:
                raise SeqdiffError(
                    f"{source}: column {column.name!r} is missing "
                    f"(the model was trained on columns {', '.join(self.modelled)})"
                )
            arrow_type = types[column.name]
            if column.kind not in _possible_kinds(arrow_type):
                raise SeqdiffError(
                    f"{source}: column {column.name!r} is {column.kind} in the model's schema "
                    f"but has type {arrow_type} here"
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
    - floating point -> numeric;
    - integers -> categorical if they have at most `max_int_categories` distinct observed values,
      else numeric;
    - timestamp / date / time / duration -> numeric (encoded as their integer storage: e.g. nanoseconds
      since the epoch for ``timestamp[ns]``, days for ``date32``; decoded back to the same type);
    - everything else (list / struct / map, binary, null-typed, decimal, ...) -> passthrough: never
      modelled, copied unchanged.

    Duplicate column names and a table with zero rows are SeqdiffErrors naming `source`.

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
        elif pa.types.is_integer(field.type):
            distinct = pc.count_distinct(table.column(field.name)).as_py()
            kind = "categorical" if distinct <= max_int_categories else "numeric"
        elif pa.types.is_null(field.type):
            kind = "passthrough"
        else:
            kind = possible[0]
        specs.append(ColumnSpec(field.name, kind, str(field.type)))
    return Schema(specs)
