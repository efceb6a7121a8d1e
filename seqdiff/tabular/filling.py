"""Write imputed values back into the caller's table: only the missing cells of the modelled columns change,
and an Arrow table stays an Arrow table, a DataFrame a DataFrame (dtypes, index and column order kept).
Also the partial rows that `MaskedDiffusionImputer.sample` completes.

Example:
    >>> import pandas as pd
    >>> table = as_table(pd.DataFrame({"x": [1.0, None]}), "table")
    >>> table.num_rows, table.column_names
    (2, ['x'])
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.codecs import fractional
from seqdiff.tabular.encoding import TableEncoder
from seqdiff.tabular.prediction import Draws
from seqdiff.tabular.schema import TableLike, is_temporal, to_arrow


def is_array(X: Any) -> bool:
    """Whether `X` is an array-like table (scikit-learn's input): a NumPy array, a list of rows, or
    another object NumPy reads as an array."""
    if isinstance(X, pd.DataFrame | pa.Table | pa.RecordBatch):
        return False
    return isinstance(X, np.ndarray | list | tuple) or hasattr(X, "__array__") or hasattr(X, "toarray")


def frame_of_array(X: Any, names: Sequence[str] | None = None, source: str = "table") -> Any:
    """An array-like `X` (`is_array`) as a DataFrame, each column of one type (numbers, text or
    objects), named `names` (a fitted model's columns, in order) or x0, x1, ... as scikit-learn names
    an array's features; anything else as it is.

    Example:
        >>> frame = frame_of_array([[1.5, "a"], [None, "b"]])
        >>> frame.columns.tolist(), frame["x0"].tolist()
        (['x0', 'x1'], [1.5, nan])
    """
    if not is_array(X):
        return X
    if hasattr(X, "toarray"):  # a SciPy sparse matrix: each missing cell is NaN, each absent one 0
        raise SeqdiffError(f"{source}: sparse input is not supported; pass a dense array (X.toarray())")
    if hasattr(X, "__array__"):
        X = np.asarray(X)
        rows_of_columns = X.ndim == 2
    else:
        X = list(X)
        rows_of_columns = all(isinstance(row, list | tuple | np.ndarray) for row in X)
    if not rows_of_columns:
        raise SeqdiffError(
            f"{source}: expected rows x columns (a 2-D array), got shape {np.shape(X)}. Reshape your data: "
            "X.reshape(-1, 1) for one column, X.reshape(1, -1) for one row"
        )
    frame = pd.DataFrame(X)
    if names is not None and len(names) != frame.shape[1]:
        raise SeqdiffError(  # scikit-learn's words
            f"{source}: X has {frame.shape[1]} features, but MaskedDiffusionImputer is expecting {len(names)} "
            f"features as input ({', '.join(map(str, names))})"
        )
    frame = frame.infer_objects()
    frame.columns = [f"x{j}" for j in range(frame.shape[1])] if names is None else [str(n) for n in names]
    return frame


def as_table(X: Any, source: str) -> pa.Table:
    """`X` (a DataFrame, an Arrow table or record batch, or an array, its columns x0, x1, ...:
    `frame_of_array`) as an Arrow table; anything else is a SeqdiffError naming `source`."""
    X = frame_of_array(X, source=source)
    if not isinstance(X, pd.DataFrame | pa.Table | pa.RecordBatch):
        raise SeqdiffError(
            f"{source}: expected a pandas DataFrame, a pyarrow Table or a 2-D array, got {type(X).__name__}"
        )
    return to_arrow(X, source)


def _spread(encoder: TableEncoder, n_rows: int, draws: Draws, values: pa.Table) -> dict[str, pa.Array]:
    """Per modelled column with a missing cell: `values` at rows `draws.rows`, nulls elsewhere."""
    index = np.full(n_rows, -1, np.int64)
    index[draws.rows] = np.arange(len(draws.rows))
    take = pa.array(index, mask=index < 0)
    return {
        name: values.column(name).combine_chunks().take(take)
        for j, name in enumerate(encoder.columns)
        if draws.missing[:, j].any()
    }


def _takes_model_type(here: pa.DataType, model: pa.DataType) -> bool:
    """Whether a column of type `here` takes the model's type `model` for its output: whole numbers
    where the model's values have fractions (a new file's readings that happen to be whole), which
    its imputed values would not fit."""
    return pa.types.is_integer(here) and fractional(model)


def _report_model_type(name: str, model: pa.DataType, written: str) -> None:
    warnings.warn(
        f"column {name!r} holds whole numbers here but fractions in the model ({model}): {written}",
        stacklevel=3,
    )


def fill_arrow(encoder: TableEncoder, table: pa.Table, draws: Draws, values: pa.Table) -> pa.Table:
    """`table` with its missing modelled cells taken from `values` (rows `draws.rows`). A column of
    whole numbers that the model holds as fractions takes the model's type whether or not a cell of
    it is missing, so every batch of a file gets the same output types."""
    for name in encoder.columns:
        i, model = table.schema.get_field_index(name), values.schema.field(name).type
        if i >= 0 and _takes_model_type(table.field(i).type, model):
            try:
                table = table.set_column(i, table.field(i).with_type(model), table.column(i).cast(model))
            except pa.ArrowInvalid as exc:  # beyond a decimal's precision
                raise SeqdiffError(
                    f"column {name!r}: its numbers do not fit the model's type {model} "
                    f"({str(exc).splitlines()[0]})"
                ) from exc
            _report_model_type(name, model, f"written as {model}")
    for name, imputed in _spread(encoder, table.num_rows, draws, values).items():
        i = table.schema.get_field_index(name)
        original = table.column(i).combine_chunks()
        if pa.types.is_null(original.type):
            column = imputed  # an all-null input column takes the training type
        else:
            try:  # dates and times in the input's unit, truncated (imputed microseconds, a file's seconds)
                imputed = imputed.cast(original.type, safe=not is_temporal(original.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SeqdiffError(
                    f"column {name!r}: imputed values do not fit its type {original.type} "
                    f"({str(exc).splitlines()[0]})"
                ) from exc
            missing = draws.missing[:, encoder.columns.index(name)]
            column = pc.if_else(pa.array(missing), imputed, original)
        table = table.set_column(i, table.schema.field(i).with_type(column.type), column)
    return table


def fill_frame(encoder: TableEncoder, df: pd.DataFrame, draws: Draws, values: pa.Table) -> pd.DataFrame:
    """A copy of `df` with its missing modelled cells taken from `values`; dtypes kept, but for an
    integer column with a missing cell that the model holds as fractions (as in `fill_arrow`)."""
    out = df.copy()
    names = [str(c) for c in df.columns]
    for name, imputed in _spread(encoder, len(df), draws, values).items():
        i = names.index(name)
        column = df.iloc[:, i]
        missing = draws.missing[:, encoder.columns.index(name)]
        here = to_arrow(df.iloc[:0, [i]]).field(0).type
        if is_temporal(here) and is_temporal(imputed.type):  # the frame's unit and time zone
            imputed = imputed.cast(here, safe=False)
        replacement = imputed.to_pandas().set_axis(df.index)
        if _takes_model_type(here, imputed.type):
            column = column.astype(replacement.dtype)
            _report_model_type(name, imputed.type, f"returned as {replacement.dtype}")
        out.isetitem(i, column.where(~missing, replacement.astype(column.dtype)))
    return out


def fill(encoder: TableEncoder, X: TableLike, draws: Draws, values: pa.Table) -> TableLike:
    """`fill_frame` for a DataFrame, else `fill_arrow` (a record batch comes back as a table)."""
    if isinstance(X, pd.DataFrame):
        return fill_frame(encoder, X, draws, values)
    return fill_arrow(encoder, to_arrow(X), draws, values)


def partial_rows(encoder: TableEncoder, n_rows: int, fixed: Mapping[str, Any] | TableLike | None) -> pa.Table:
    """The modelled columns in their training types: the `fixed` cells, nulls elsewhere.

    `fixed`: ``{"column": value}`` for every row, or a table of `n_rows` partial rows. An unknown column
    or a value that does not fit its column's type is a SeqdiffError.
    """
    types = encoder.decode_sample(np.empty((0, len(encoder.columns)), np.int64)).schema
    if fixed is None:
        given: dict[str, Any] = {}
    elif isinstance(fixed, Mapping):
        given = {str(name): pa.repeat(pa.scalar(value), n_rows) for name, value in fixed.items()}
    else:
        table = as_table(fixed, "fixed")
        if table.num_rows != n_rows:
            raise SeqdiffError(f"fixed: {table.num_rows} partial rows given for n_rows={n_rows}")
        given = {name: table.column(name) for name in table.column_names}
    unknown = sorted(set(given) - set(encoder.columns))
    if unknown:
        raise SeqdiffError(
            f"fixed: column(s) {', '.join(map(repr, unknown))} are not modelled "
            f"(modelled columns: {', '.join(encoder.columns)})"
        )
    columns = []
    for field in types:
        if field.name not in given:
            columns.append(pa.nulls(n_rows, field.type))
            continue
        try:
            columns.append(given[field.name].cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise SeqdiffError(
                f"fixed: column {field.name!r}: value does not fit its type {field.type} "
                f"({str(exc).splitlines()[0]})"
            ) from exc
    return pa.Table.from_arrays(columns, schema=types)
