"""One token per cell: per-column vocabularies concatenated into one flat vocabulary, plus file readers.

Categorical columns get one token per category seen in training; numeric columns get quantile bins,
with bins in a heavy tail split further (see `TableEncoder.fit`).
Token ids of column j are ``offsets[j] .. offsets[j] + vocab_sizes[j] - 1``; a missing cell is the
shared ``mask_id == vocab_size``.

Stated behaviours:

- fitting uses observed cells only (null, and NaN in floating columns, are missing);
- an all-missing modelled column is skipped: not encoded, never imputed, listed in
  `TableEncoder.skipped` (with a warning at fit time); its cells stay missing;
- a constant column gets a one-token vocabulary;
- a category not seen in training is encoded as `mask_id` with a warning (``on_unseen="mask"``, the
  default) or is a SeqdiffError (``on_unseen="error"``); an imputer should only write back cells that
  were null in its input, so such a value is kept, not overwritten;
- numeric values outside the training range go to the first / last bin;
- numeric values are handled as int64 (integer and date/time columns) or float64 (floating columns);
  decoding rounds integer columns and returns every column in its training Arrow type.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"age": [23.0, 35.0, None], "sex": ["F", "M", "F"]})
    >>> enc = TableEncoder.fit(df)
    >>> enc.token_names
    ['age=23', 'age=35', 'sex=F', 'sex=M']
    >>> enc.encode(df).tolist()
    [[0, 2], [1, 3], [4, 2]]
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.schema import Schema, TableLike, infer_schema, is_temporal, to_arrow

N_BINS = 32
# Quantile bins wider than this many standard deviations are split (see _bin_edges); 0 turns it off.
MAX_BIN_WIDTH = 0.25
MIN_SPLIT_ROWS = 8  # a split never leaves a bin with fewer training values than this
SAMPLES_PER_BIN = 256
NUMERIC_POINTS = ("median", "mean")  # point estimates of a numeric cell from its predictive distribution
STATE_FORMAT = "seqdiff.table_encoder/1"

Rng = np.random.Generator | int | None


def _storage_type(arrow_type: pa.DataType) -> pa.DataType:
    """Integer type holding a date/time type's values (e.g. int32 days for date32)."""
    return pa.int32() if arrow_type.bit_width == 32 else pa.int64()


def _numeric_values(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, missing): int64 for integer and date/time arrays, float64 otherwise."""
    if pa.types.is_null(arr.type):
        return np.zeros(len(arr), np.int64), np.ones(len(arr), bool)
    if is_temporal(arr.type):
        arr = arr.view(_storage_type(arr.type)).cast(pa.int64())
    else:
        arr = arr.cast(pa.int64() if pa.types.is_integer(arr.type) else pa.float64())
    missing = pc.is_null(arr, nan_is_null=True).to_numpy(zero_copy_only=False)
    return arr.fill_null(0).to_numpy(), missing


def _from_values(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """Inverse of `_numeric_values` for non-missing values (already rounded for integer types)."""
    if is_temporal(arrow_type):
        return pa.array(values, pa.int64()).cast(_storage_type(arrow_type)).view(arrow_type)
    return pa.array(values).cast(arrow_type)


def _bin_bounds(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) indices into sorted `values` of each bin whose left edges are `edges`."""
    starts = np.searchsorted(values, edges, side="left")
    return starts, np.append(starts[1:], len(values))


def _split_at_median(values: np.ndarray, edges: np.ndarray, start: int, end: int) -> np.ndarray:
    """`edges` with the bin holding sorted `values[start:end]` (more than one distinct value) split at
    its median value, or at the next larger value where the median equals the bin's first value."""
    split = values[(start + end) // 2]
    if split == values[start]:
        split = values[np.searchsorted(values, split, side="right")]
    return np.insert(edges, np.searchsorted(edges, split), split)


def _bin_edges(values: np.ndarray, n_bins: int, max_width: float = 0.0) -> np.ndarray:
    """Left edges (training values, ascending) of the bins over sorted `values`.

    Few distinct values: one bin per value. Otherwise start from `n_bins` quantile edges; ties (e.g. a
    spike at 0) merge some of them, and the bins lost that way are recovered by repeatedly splitting the
    most populated bin that still holds more than one distinct value at its median.

    Then, with `max_width` > 0, the widest bin spanning more than `max_width` standard deviations is
    split at its median, again and again, while both halves keep MIN_SPLIT_ROWS values, up to
    2 `n_bins` bins in all. In a heavy tail a quantile bin spans many standard deviations (the top bin
    of 32 on California's count columns: 12-22), and a value is known to the model only up to its bin:
    there most of the imputation error was (BENCHMARKS.md, "Bins in heavy tails").
    """
    distinct = np.unique(values)
    if len(distinct) <= n_bins:
        return distinct
    edges = np.unique(values[(np.arange(n_bins) * len(values)) // n_bins])
    while len(edges) < n_bins:
        starts, ends = _bin_bounds(values, edges)
        splittable = values[ends - 1] > values[starts]
        k = int(np.argmax(np.where(splittable, ends - starts, -1)))
        edges = _split_at_median(values, edges, starts[k], ends[k])
    widest = max_width * float(values.std())
    kept: set[float] = set()  # left edges of bins whose median split would leave a half too small (ties)
    while max_width > 0 and len(edges) < 2 * n_bins:
        starts, ends = _bin_bounds(values, edges)
        widths = values[ends - 1] - values[starts]
        open_ = (ends - starts >= 2 * MIN_SPLIT_ROWS) & ~np.isin(edges, list(kept))
        k = int(np.argmax(np.where(open_, widths, -1.0)))
        if not open_[k] or widths[k] <= widest:
            break
        split = _split_at_median(values, edges, starts[k], ends[k])
        low = np.searchsorted(values, split[k + 1], side="left") - starts[k]
        if min(low, ends[k] - starts[k] - low) < MIN_SPLIT_ROWS:
            kept.add(edges[k])
        else:
            edges = split
    return edges


@dataclass
class _NumericCodec:
    """Quantile bins of one numeric column; each bin keeps its mean and a sorted sample of its values."""

    name: str
    arrow_type: pa.DataType
    edges: np.ndarray
    means: np.ndarray
    samples: list[np.ndarray]
    kind: str = field(default="numeric", init=False)

    def __post_init__(self) -> None:
        self._flat = np.concatenate(self.samples)
        self._lengths = np.array([len(s) for s in self.samples], np.int64)
        self._starts = np.concatenate([[0], np.cumsum(self._lengths)[:-1]]).astype(np.int64)

    @property
    def integral(self) -> bool:
        return not pa.types.is_floating(self.arrow_type)

    @property
    def size(self) -> int:
        return len(self.edges)

    @classmethod
    def fit(cls, name: str, arr: pa.Array, n_bins: int, max_width: float) -> _NumericCodec | None:
        values, missing = _numeric_values(arr)
        values = np.sort(values[~missing])
        if len(values) == 0:
            return None
        if not np.isfinite(values).all():
            raise SeqdiffError(f"column {name!r}: infinite values cannot be modelled")
        edges = _bin_edges(values, n_bins, max_width)
        starts, ends = _bin_bounds(values, edges)
        means = np.array([values[s:e].mean() for s, e in zip(starts, ends, strict=True)])
        # Evenly spaced order statistics, first and last included, stand in for a bin's values.
        samples = [
            values[np.unique(np.linspace(s, e - 1, min(SAMPLES_PER_BIN, e - s)).round().astype(np.int64))]
            for s, e in zip(starts, ends, strict=True)
        ]
        return cls(name, arr.type, edges, means, samples)

    def _bin(self, values: np.ndarray) -> np.ndarray:
        # np.searchsorted kept over a numba loop: on 10M values x 31 edges a single-threaded numba binary
        # search measured 0.29 s vs 0.31 s for numpy; only numba's parallel loop was faster (by the core count).
        return np.searchsorted(self.edges[1:], values, side="right")

    def encode(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        values, missing = _numeric_values(arr)
        return np.where(missing, -1, self._bin(values)), np.zeros(len(values), bool)

    def _label(self, value: Any) -> str:
        if is_temporal(self.arrow_type):
            return str(_from_values(np.array([value]), self.arrow_type)[0])
        return str(int(value)) if self.integral else f"{value:.6g}"

    @property
    def token_names(self) -> list[str]:
        names = []
        for k, sample in enumerate(self.samples):
            low = self._label(self.edges[k])
            if sample[0] == sample[-1]:
                names.append(f"{self.name}={low}")
            elif k + 1 < self.size:
                names.append(f"{self.name}=[{low},{self._label(self.edges[k + 1])})")
            else:
                names.append(f"{self.name}=[{low},{self._label(sample[-1])}]")
        return names

    def _output(self, values: np.ndarray) -> pa.Array:
        if self.integral:
            values = np.rint(values).astype(np.int64)
        return _from_values(values, self.arrow_type)

    def decode_point(self, probs: np.ndarray, statistic: str = "mean") -> pa.Array:
        # Row-wise sums, not matrix products: BLAS kernels vary with the row count, and a row's value
        # must not depend on how many rows are decoded with it (streamed = in-memory imputation).
        p = probs / probs.sum(axis=1, keepdims=True)
        if statistic == "mean":
            return self._output((p * self.means).sum(axis=1))
        # The median of the predictive distribution: each bin's mass spread evenly over its stored
        # order statistics, linearly interpolated inside the bin where the cumulative mass reaches 1/2.
        cdf = np.cumsum(p, axis=1)
        k = np.minimum((cdf < 0.5).sum(axis=1), self.size - 1)
        rows = np.arange(len(p))
        before = np.where(k > 0, cdf[rows, np.maximum(k - 1, 0)], 0.0)
        within = np.clip((0.5 - before) / np.maximum(p[rows, k], 1e-300), 0.0, 1.0)
        return self._output(self._at(k, within))

    def _at(self, local: np.ndarray, within: np.ndarray) -> np.ndarray:
        """The value at position `within` (0 = first, 1 = last) of bin `local`'s stored order
        statistics, linearly interpolated: the inverse of `within`."""
        position = within * (self._lengths[local] - 1)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, self._lengths[local] - 1)
        a, b = self._flat[self._starts[local] + low], self._flat[self._starts[local] + high]
        return a + (position - low) * (b - a)

    def within(self, arr: pa.Array) -> np.ndarray:
        """Where each value lies inside its bin, in [0, 1] on the bin's stored order statistics
        (clipped at its first and last); 0.5 in a bin of one value, NaN where missing."""
        values, missing = _numeric_values(arr)
        local = self._bin(values)
        out = np.full(len(values), np.nan)
        for k, sample in enumerate(self.samples):
            rows = (local == k) & ~missing
            if rows.any():
                grid = np.linspace(0.0, 1.0, len(sample)) if len(sample) > 1 else np.array([0.5])
                out[rows] = np.interp(values[rows].astype(np.float64), sample.astype(np.float64), grid)
        return out

    def decode_sample(
        self, local: np.ndarray, rng: np.random.Generator, within: np.ndarray | None = None
    ) -> pa.Array:
        draw = rng.random(len(local))
        if within is None:
            return self._output(
                self._flat[self._starts[local] + np.floor(draw * self._lengths[local]).astype(np.int64)]
            )
        return self._output(self._at(local, np.where(np.isnan(within), draw, within)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "edges": self.edges.tolist(),
            "means": self.means.tolist(),
            "samples": [s.tolist() for s in self.samples],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], arrow_type: pa.DataType) -> _NumericCodec:
        dtype = np.float64 if pa.types.is_floating(arrow_type) else np.int64
        return cls(
            state["name"],
            arrow_type,
            np.array(state["edges"], dtype),
            np.array(state["means"], np.float64),
            [np.array(s, dtype) for s in state["samples"]],
        )


@dataclass
class _CategoricalCodec:
    """The sorted categories observed in one categorical column."""

    name: str
    arrow_type: pa.DataType
    categories: list[Any]
    kind: str = field(default="categorical", init=False)

    def __post_init__(self) -> None:
        self._values = pa.array(self.categories, self.value_type)

    @property
    def value_type(self) -> pa.DataType:
        is_dict = pa.types.is_dictionary(self.arrow_type)
        return self.arrow_type.value_type if is_dict else self.arrow_type

    @property
    def size(self) -> int:
        return len(self.categories)

    @staticmethod
    def _plain(arr: pa.Array) -> pa.Array:
        return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr

    @classmethod
    def fit(cls, name: str, arr: pa.Array) -> _CategoricalCodec | None:
        plain = cls._plain(arr)
        observed = plain.filter(pc.invert(pc.is_null(plain, nan_is_null=True)))
        categories = sorted(pc.unique(observed).to_pylist())
        return cls(name, arr.type, categories) if categories else None

    def encode(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        if pa.types.is_null(arr.type):
            return np.full(len(arr), -1, np.int64), np.zeros(len(arr), bool)
        plain = self._plain(arr)
        try:
            plain = plain.cast(self.value_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            message = str(exc).splitlines()[0]
            raise SeqdiffError(
                f"column {self.name!r}: values do not fit its type {self.value_type} ({message})"
            ) from exc
        missing = pc.is_null(plain, nan_is_null=True).to_numpy(zero_copy_only=False)
        local = pc.index_in(plain, value_set=self._values).fill_null(-1).to_numpy(zero_copy_only=False)
        return local.astype(np.int64), (local < 0) & ~missing

    @property
    def token_names(self) -> list[str]:
        return [f"{self.name}={c}" for c in self.categories]

    def _take(self, local: np.ndarray) -> pa.Array:
        return self._values.take(pa.array(local)).cast(self.arrow_type)

    def decode_point(self, probs: np.ndarray, statistic: str = "mean") -> pa.Array:
        return self._take(np.argmax(probs, axis=1))

    def decode_sample(
        self, local: np.ndarray, rng: np.random.Generator, within: np.ndarray | None = None
    ) -> pa.Array:
        return self._take(local)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "categories": self.categories}

    @classmethod
    def from_dict(cls, state: dict[str, Any], arrow_type: pa.DataType) -> _CategoricalCodec:
        return cls(state["name"], arrow_type, state["categories"])


_CODECS = {"numeric": _NumericCodec, "categorical": _CategoricalCodec}


class TableEncoder:
    """Maps a table to token ids [rows, n_columns] and model outputs back to typed Arrow columns.

    Build with `TableEncoder.fit` or `TableEncoder.from_dict`. Attributes: `schema` (the training
    schema), `columns` (modelled columns in order; ``n_columns = len(columns)``), `kinds`, `skipped`
    (all-missing columns left out), `vocab_sizes`, `offsets`, `vocab_size`, `mask_id`, `allowed`
    (bool [n_columns, vocab_size]: the tokens column j may output) and `token_names`.

    Example:
        >>> import pandas as pd
        >>> enc = TableEncoder.fit(pd.DataFrame({"x": [1.0, 2.0, 2.0], "c": ["a", "b", "b"]}))
        >>> enc.vocab_sizes, enc.offsets.tolist(), enc.mask_id
        ([2, 2], [0, 2], 4)
        >>> enc.decode_sample(enc.encode(pd.DataFrame({"x": [2.0], "c": ["a"]})), rng=0).to_pylist()
        [{'x': 2.0, 'c': 'a'}]
    """

    def __init__(self, schema: Schema, codecs: list[_NumericCodec | _CategoricalCodec], skipped: list[str]):
        if not codecs:
            raise SeqdiffError("the table has no numeric or categorical column with observed values to model")
        self.schema = schema
        self.skipped = skipped
        self._codecs = codecs
        self.columns = [c.name for c in codecs]
        self.kinds = [c.kind for c in codecs]
        self.vocab_sizes = [c.size for c in codecs]
        self.offsets = np.concatenate([[0], np.cumsum(self.vocab_sizes)[:-1]]).astype(np.int64)
        self.vocab_size = int(sum(self.vocab_sizes))
        self.mask_id = self.vocab_size
        self.allowed = np.zeros((len(codecs), self.vocab_size), bool)
        for j, (start, size) in enumerate(zip(self.offsets, self.vocab_sizes, strict=True)):
            self.allowed[j, start : start + size] = True
        self.token_names = [name for c in codecs for name in c.token_names]
        self._model_schema = Schema([c for c in schema.columns if c.name in self.columns])
        self._arrow_schema = pa.schema([(c.name, c.arrow_type) for c in codecs])

    @classmethod
    def fit(
        cls,
        data: TableLike,
        schema: Schema | None = None,
        *,
        n_bins: int = N_BINS,
        max_bin_width: float = MAX_BIN_WIDTH,
        source: str = "table",
    ) -> TableEncoder:
        """Learn vocabularies and bins from the observed cells of `data` (schema inferred when None).

        A numeric column gets `n_bins` quantile bins; then, while a bin spans more than `max_bin_width`
        of the column's standard deviations and holds 2 MIN_SPLIT_ROWS values, the widest such bin is
        split at its median, up to 2 `n_bins` bins (0: quantile bins only).

        Example:
            >>> import pandas as pd
            >>> df = pd.DataFrame({"x": [float(i) for i in range(100)]})
            >>> TableEncoder.fit(df, n_bins=4, max_bin_width=0).token_names
            ['x=[0,25)', 'x=[25,50)', 'x=[50,75)', 'x=[75,99]']
            >>> tail = pd.DataFrame({"x": [*range(60), *range(100, 4100, 100)]})  # a long right tail
            >>> TableEncoder.fit(tail, n_bins=4, max_bin_width=0).token_names
            ['x=[0,25)', 'x=[25,50)', 'x=[50,1600)', 'x=[1600,4000]']
            >>> TableEncoder.fit(tail, n_bins=4).token_names
            ['x=[0,25)', 'x=[25,50)', 'x=[50,300)', 'x=[300,1600)', 'x=[1600,2800)', 'x=[2800,4000]']
        """
        if n_bins < 1:
            raise SeqdiffError(f"n_bins must be at least 1, got {n_bins}")
        if not max_bin_width >= 0:
            raise SeqdiffError(f"max_bin_width must be non-negative, got {max_bin_width}")
        table = to_arrow(data, source)
        if table.num_rows == 0:
            raise SeqdiffError(f"{source}: the table has no rows")
        schema = schema if schema is not None else infer_schema(table, source=source)
        schema.check(table, source)
        codecs, skipped = [], []
        for name in schema.modelled:
            try:
                column = table.column(name).combine_chunks()
                if schema.kind_of(name) == "numeric":
                    codec = _NumericCodec.fit(name, column, n_bins, max_bin_width)
                else:
                    codec = _CategoricalCodec.fit(name, column)
            except SeqdiffError as exc:
                raise SeqdiffError(f"{source}: {exc}") from exc
            if codec is None:
                skipped.append(name)
            else:
                codecs.append(codec)
        if skipped:
            warnings.warn(
                f"{source}: column(s) {', '.join(map(repr, skipped))} have no observed value; "
                "they are not modelled and stay missing",
                stacklevel=2,
            )
        return cls(schema, codecs, skipped)

    def encode(
        self, data: TableLike, *, on_unseen: Literal["mask", "error"] = "mask", source: str = "table"
    ) -> np.ndarray:
        """Token ids int64 [rows, n_columns]; missing cells (null, NaN) are `mask_id`.

        Extra columns are ignored; a modelled column missing from `data`, or of an incompatible type,
        is a SeqdiffError. Unseen categories: see the module docstring.

        Example:
            >>> import pandas as pd
            >>> enc = TableEncoder.fit(pd.DataFrame({"c": ["a", "b"]}))
            >>> enc.encode(pd.DataFrame({"c": ["b", None]})).tolist()
            [[1], [2]]
        """
        table = to_arrow(data, source)
        self._model_schema.check(table, source)
        tokens = np.empty((table.num_rows, len(self._codecs)), np.int64)
        for j, codec in enumerate(self._codecs):
            column = table.column(codec.name).combine_chunks()
            try:
                local, unseen = codec.encode(column)
            except SeqdiffError as exc:
                raise SeqdiffError(f"{source}: {exc}") from exc
            if unseen.any():
                example = column.filter(pa.array(unseen))[0].as_py()
                message = f"{source}: column {codec.name!r}: {int(unseen.sum())} value(s) not seen in training (e.g. {example!r})"
                if on_unseen == "error":
                    raise SeqdiffError(message)
                warnings.warn(f"{message}; encoded as missing", stacklevel=2)
            tokens[:, j] = np.where(local < 0, self.mask_id, local + self.offsets[j])
        return tokens

    def decode_point(self, probs: np.ndarray | Sequence[np.ndarray], numeric: str = "mean") -> pa.Table:
        """Point estimate per cell from token probabilities (need not be normalised).

        `probs` is either [rows, n_columns, vocab_size (+1 for the mask, ignored)] over the flat vocabulary,
        or a list with one [rows, vocab_sizes[j]] array per column. Numeric, ``numeric="mean"``: the
        conditional mean ``sum_b p(b) * mean of the training values in bin b``; ``"median"``: the
        conditional median, each bin's mass spread over its training values (both rounded for integer
        columns). Categorical: the most probable category. Returns an Arrow table with the training
        column types.

        Example:
            >>> import pandas as pd
            >>> enc = TableEncoder.fit(pd.DataFrame({"x": [0.0, 10.0]}))
            >>> enc.decode_point([np.array([[0.5, 0.5]])]).column("x").to_pylist()
            [5.0]
        """
        if numeric not in NUMERIC_POINTS:
            raise ValueError(f"numeric must be one of {', '.join(NUMERIC_POINTS)}, not {numeric!r}")
        if isinstance(probs, np.ndarray) and probs.ndim == 3:
            probs = [
                probs[:, j, o : o + n]
                for j, (o, n) in enumerate(zip(self.offsets, self.vocab_sizes, strict=True))
            ]
        if len(probs) != len(self._codecs):
            raise ValueError(f"expected probabilities for {len(self._codecs)} columns, got {len(probs)}")
        arrays = []
        for codec, p in zip(self._codecs, probs, strict=True):
            p = np.asarray(p, np.float64)
            if p.ndim != 2 or p.shape[1] != codec.size:
                raise ValueError(
                    f"column {codec.name!r}: expected probabilities [rows, {codec.size}], got {p.shape}"
                )
            arrays.append(codec.decode_point(p, numeric))
        return pa.Table.from_arrays(arrays, schema=self._arrow_schema)

    def within(self, data: TableLike, *, source: str = "table") -> np.ndarray:
        """Where each numeric value of `data` lies inside its bin (the bin of ``encode(data)``): float
        [rows, n_columns] in [0, 1] on the bin's stored order statistics, NaN for categorical columns
        and missing cells. What the model sees besides the bin (``value_frequencies``).

        Example:
            >>> import pandas as pd
            >>> df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
            >>> enc = TableEncoder.fit(df, n_bins=2)
            >>> enc.within(df)[:, 0].tolist()
            [0.0, 1.0, 0.0, 1.0]
        """
        table = to_arrow(data, source)
        out = np.full((table.num_rows, len(self._codecs)), np.nan)
        for j, codec in enumerate(self._codecs):
            if codec.kind == "numeric":
                out[:, j] = codec.within(table.column(codec.name).combine_chunks())
        return out

    def decode_sample(
        self, tokens: np.ndarray, rng: Rng = None, within: np.ndarray | None = None
    ) -> pa.Table:
        """Values for token ids [rows, n_columns] (no mask tokens): a category, or for a numeric bin the
        value at `within` [rows, n_columns] inside the bin (see `within`), or where that is NaN or not
        given one of the bin's stored training values drawn uniformly. Returns an Arrow table.

        Example:
            >>> import pandas as pd
            >>> enc = TableEncoder.fit(pd.DataFrame({"n": [3, 5]}))
            >>> enc.decode_sample(np.array([[1], [0]])).column("n").to_pylist()
            [5, 3]
        """
        rng = np.random.default_rng(rng)
        tokens = np.asarray(tokens, np.int64)
        if tokens.ndim != 2 or tokens.shape[1] != len(self._codecs):
            raise ValueError(f"expected tokens [rows, {len(self._codecs)}], got {tokens.shape}")
        local = tokens - self.offsets
        arrays = []
        for j, codec in enumerate(self._codecs):
            bad = (local[:, j] < 0) | (local[:, j] >= codec.size)
            if bad.any():
                raise ValueError(f"column {codec.name!r}: token {tokens[bad, j][0]} is not one of its tokens")
            arrays.append(codec.decode_sample(local[:, j], rng, None if within is None else within[:, j]))
        return pa.Table.from_arrays(arrays, schema=self._arrow_schema)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; `TableEncoder.from_dict` rebuilds an identical encoder."""
        return {
            "format": STATE_FORMAT,
            "schema": self.schema.to_dict(),
            "arrow_types": base64.b64encode(self._arrow_schema.serialize().to_pybytes()).decode("ascii"),
            "skipped": self.skipped,
            "columns": [c.to_dict() for c in self._codecs],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TableEncoder:
        if state.get("format") != STATE_FORMAT:
            raise SeqdiffError(
                f"table encoder state: unknown format {state.get('format')!r} (expected {STATE_FORMAT!r})"
            )
        arrow_schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(state["arrow_types"])))
        codecs = [
            _CODECS[c["kind"]].from_dict(c, arrow_schema.field(c["name"]).type) for c in state["columns"]
        ]
        return cls(Schema.from_dict(state["schema"]), codecs, list(state["skipped"]))


def _file_format(path: Path) -> str:
    if not path.exists():
        raise SeqdiffError(f"{path}: no such file")
    if not path.is_file():
        raise SeqdiffError(f"{path}: not a file")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] in ([".parquet"], [".pq"]):
        return "parquet"
    # The CSV reader decompresses .csv.gz, .csv.bz2, ... by itself.
    for fmt in ("csv", "tsv"):
        if f".{fmt}" in suffixes[-2:]:
            return fmt
    raise SeqdiffError(f"{path}: unsupported file type (expected .parquet, .pq, .csv or .tsv)")


def _csv_options(fmt: str, column_types: dict[str, pa.DataType] | None) -> dict[str, Any]:
    return {
        "parse_options": pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
        # Empty strings are missing cells, as in pandas.
        "convert_options": pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=True),
    }


def _error(path: Path, fmt: str, exc: Exception) -> SeqdiffError:
    what = "not a readable Parquet file" if fmt == "parquet" else "cannot parse the file as CSV"
    return SeqdiffError(f"{path}: {what} ({str(exc).splitlines()[0]})")


def read_table(path: str | Path, column_types: dict[str, pa.DataType] | None = None) -> pa.Table:
    """Read a whole Parquet (.parquet, .pq) or CSV (.csv, .tsv, optionally compressed) file.

    Missing, unreadable or other files are one-line SeqdiffErrors naming the path.

    Example:
        >>> read_table("../shared/data/tabular/magic.parquet").num_rows  # doctest: +SKIP
        19020
    """
    path = Path(path)
    fmt = _file_format(path)
    try:
        if fmt == "parquet":
            return pq.read_table(path)
        return pacsv.read_csv(path, **_csv_options(fmt, column_types))
    except (pa.ArrowException, OSError) as exc:
        raise _error(path, fmt, exc) from exc


def iter_record_batches(
    path: str | Path, batch_size: int = 65_536, column_types: dict[str, pa.DataType] | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream a Parquet or CSV file as record batches of at most `batch_size` rows.

    The file is opened (and checked) at the call, not at the first batch. CSV column types are
    inferred from the first block; pass `column_types` when later rows could change them.

    Example:
        >>> sum(b.num_rows for b in iter_record_batches("../shared/data/tabular/magic.parquet", 5000))  # doctest: +SKIP
        19020
    """
    if batch_size < 1:
        raise SeqdiffError(f"batch_size must be at least 1, got {batch_size}")
    path = Path(path)
    fmt = _file_format(path)
    try:
        if fmt == "parquet":
            batches = pq.ParquetFile(path).iter_batches(batch_size=batch_size)
        else:
            batches = pacsv.open_csv(path, **_csv_options(fmt, column_types))
    except (pa.ArrowException, OSError) as exc:
        raise _error(path, fmt, exc) from exc

    def generate() -> Iterator[pa.RecordBatch]:
        try:
            for batch in batches:
                for start in range(0, batch.num_rows, batch_size):
                    yield batch.slice(start, batch_size)
        except (pa.ArrowException, OSError) as exc:
            raise _error(path, fmt, exc) from exc

    return generate()
