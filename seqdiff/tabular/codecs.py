"""Per-column codecs of `TableEncoder`: quantile bins of a numeric column, the categories of a categorical
one, and the conversions between Arrow columns and numpy values they share.

A numeric column gets quantile bins, with bins in a heavy tail split further (`bin_edges`); each bin keeps
the mean and a sorted sample of its training values, for point estimates and draws inside the bin. Its
decoded numbers keep the precision its values were recorded with (`decimal_places`).

Example:
    >>> codec = NumericCodec.fit("x", pa.array([0.0, 1.0, 2.0, 3.0]), n_bins=2, max_width=0.0)
    >>> codec.edges.tolist(), codec.encode(pa.array([0.5, None]))[0].tolist()
    ([0.0, 2.0], [0, -1])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.schema import is_temporal

MIN_SPLIT_ROWS = 8  # a split never leaves a bin with fewer training values than this
SAMPLES_PER_BIN = 256
# More decimal places than this, and a column's numbers are taken as computed, not recorded: not rounded.
MAX_DECIMALS = 6


def _storage_type(arrow_type: pa.DataType) -> pa.DataType:
    """Integer type holding a date/time type's values (e.g. int32 days for date32)."""
    return pa.int32() if arrow_type.bit_width == 32 else pa.int64()


def fractional(arrow_type: pa.DataType) -> bool:
    """Whether a numeric column's values have fractions: floats and decimals (not integers, dates)."""
    return pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type)


def numeric_values(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, missing): int64 for integer and date/time arrays, float64 for floats and decimals."""
    if pa.types.is_null(arr.type):
        return np.zeros(len(arr), np.int64), np.ones(len(arr), bool)
    if is_temporal(arr.type):
        arr = arr.view(_storage_type(arr.type)).cast(pa.int64())
    else:
        arr = arr.cast(pa.int64() if pa.types.is_integer(arr.type) else pa.float64())
    missing = pc.is_null(arr, nan_is_null=True).to_numpy(zero_copy_only=False)
    return arr.fill_null(0).to_numpy(), missing


def from_values(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """Inverse of `numeric_values` for non-missing values (already rounded for integer types)."""
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


def bin_edges(values: np.ndarray, n_bins: int, max_width: float = 0.0) -> np.ndarray:
    """Left edges (training values, ascending) of the bins over sorted `values`.

    Few distinct values: one bin per value. Otherwise start from `n_bins` quantile edges; ties (e.g. a
    spike at 0) merge some of them, and the bins lost that way are recovered by repeatedly splitting the
    most populated bin that still holds more than one distinct value at its median.

    Then, with `max_width` > 0, the widest bin spanning more than `max_width` standard deviations is
    split at its median, again and again, while both halves keep MIN_SPLIT_ROWS values, up to
    2 `n_bins` bins in all. In a heavy tail a quantile bin spans many standard deviations, and a value
    is known to the model only up to its bin (BENCHMARKS.md, "Bins in heavy tails").

    Example:
        >>> bin_edges(np.arange(8.0), 4).tolist()
        [0.0, 2.0, 4.0, 6.0]
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


def decimal_places(values: np.ndarray) -> int | None:
    """The fewest decimal places, at most MAX_DECIMALS, that write each of `values` (floats) exactly,
    or None: a column recorded as ``70.5, 81.25`` has 2, and its imputed numbers are rounded to 2, not
    written as ``76.83419...``. Binary floats' own noise (``0.1 + 0.2``) is not a decimal.

    Example:
        >>> decimal_places(np.array([70.5, 81.25, 0.1 + 0.2])), decimal_places(np.array([np.pi]))
        (2, None)
        >>> decimal_places(np.array([123456789.123, 0.5])), decimal_places(np.array([2e-7]))
        (3, None)
    """
    # A few units in the last place: rounding by multiplying, rounding and dividing is not exact.
    tolerance = 8 * np.spacing(np.abs(values))
    for places in range(MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(values, places) - values) <= tolerance):
            return places
    return None


@dataclass
class NumericCodec:
    """Quantile bins of one numeric column; each bin keeps its mean and a sorted sample of its values.
    ``decimals``: the decimal places decoded floats are rounded to (None: not rounded)."""

    name: str
    arrow_type: pa.DataType
    edges: np.ndarray
    means: np.ndarray
    samples: list[np.ndarray]
    decimals: int | None = None
    kind: str = field(default="numeric", init=False)

    def __post_init__(self) -> None:
        self._flat = np.concatenate(self.samples)
        self._lengths = np.array([len(s) for s in self.samples], np.int64)
        self._starts = np.concatenate([[0], np.cumsum(self._lengths)[:-1]]).astype(np.int64)

    @property
    def integral(self) -> bool:
        return not fractional(self.arrow_type)

    @property
    def size(self) -> int:
        return len(self.edges)

    @classmethod
    def fit(cls, name: str, arr: pa.Array, n_bins: int, max_width: float) -> NumericCodec | None:
        values, missing = numeric_values(arr)
        values = np.sort(values[~missing])
        if len(values) == 0:
            return None
        if not np.isfinite(values).all():
            raise SeqdiffError(f"column {name!r}: infinite values cannot be modelled")
        edges = bin_edges(values, n_bins, max_width)
        starts, ends = _bin_bounds(values, edges)
        means = np.array([values[s:e].mean() for s, e in zip(starts, ends, strict=True)])
        # Evenly spaced order statistics, first and last included, stand in for a bin's values.
        samples = [
            values[np.unique(np.linspace(s, e - 1, min(SAMPLES_PER_BIN, e - s)).round().astype(np.int64))]
            for s, e in zip(starts, ends, strict=True)
        ]
        decimals = decimal_places(values) if fractional(arr.type) else None
        return cls(name, arr.type, edges, means, samples, decimals)

    def _bin(self, values: np.ndarray) -> np.ndarray:
        # np.searchsorted rather than a numba loop: a single-threaded binary search in numba was no faster.
        return np.searchsorted(self.edges[1:], values, side="right")

    def _values(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """`numeric_values` of `arr` on the model's scale: a date or time in the model's units (a
        CSV's timestamps in seconds against a model's microseconds would read as a million times too
        early). Numbers where the model's values are dates or times, or the reverse, are a
        SeqdiffError: their storage integers mean nothing on the other's scale."""
        here = arr.type
        if here != self.arrow_type and not pa.types.is_null(here):
            problem = {
                (False, True): "numbers, not dates or times",
                (True, False): "dates or times, not numbers",
            }.get((is_temporal(here), is_temporal(self.arrow_type)), "")
            if not problem and is_temporal(here):
                try:  # truncating: a finer unit's remainder does not move a value out of its bin
                    arr = pc.cast(arr, self.arrow_type, safe=False)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    problem = str(exc).splitlines()[0]
            if problem:
                raise SeqdiffError(
                    f"column {self.name!r} holds {here} values here, but the model's are "
                    f"{self.arrow_type} ({problem})"
                )
        return numeric_values(arr)

    def encode(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        values, missing = self._values(arr)
        return np.where(missing, -1, self._bin(values)), np.zeros(len(values), bool)

    def _label(self, value: Any) -> str:
        if is_temporal(self.arrow_type):
            return str(from_values(np.array([value]), self.arrow_type)[0])
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
        elif self.decimals is not None:
            values = np.round(values, self.decimals)
        return from_values(values, self.arrow_type)

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
        values, missing = self._values(arr)
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
            "decimals": self.decimals,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], arrow_type: pa.DataType) -> NumericCodec:
        dtype = np.float64 if fractional(arrow_type) else np.int64
        return cls(
            state["name"],
            arrow_type,
            np.array(state["edges"], dtype),
            np.array(state["means"], np.float64),
            [np.array(s, dtype) for s in state["samples"]],
            state.get("decimals"),  # None in models saved before decimals were kept
        )


@dataclass
class CategoricalCodec:
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
    def fit(cls, name: str, arr: pa.Array) -> CategoricalCodec | None:
        plain = cls._plain(arr)
        observed = plain.filter(pc.invert(pc.is_null(plain, nan_is_null=True)))
        categories = sorted(pc.unique(observed).to_pylist())
        return cls(name, arr.type, categories) if categories else None

    def encode(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        if pa.types.is_null(arr.type):
            return np.full(len(arr), -1, np.int64), np.zeros(len(arr), bool)
        plain = self._plain(arr)
        self._check_writable_as(plain.type)
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

    def _check_writable_as(self, here: pa.DataType) -> None:
        """A SeqdiffError when a column of type `here` could not hold every category (imputed values are
        written in the input's type): text categories for a column of numbers here, say. Checked
        before any work, where it would otherwise fail after the imputation."""
        if here == self.value_type or pa.types.is_null(here):
            return
        try:
            self._values.cast(here)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            shown = ", ".join(map(repr, self.categories[:3])) + (", ..." if self.size > 3 else "")
            raise SeqdiffError(
                f"column {self.name!r} holds {here} values here, but the model's categories are "
                f"{self.value_type} ({shown}), which it cannot hold: a model of another table?"
            ) from None

    @property
    def token_names(self) -> list[str]:
        return [f"{self.name}={c}" for c in self.categories]

    def _take(self, local: np.ndarray) -> pa.Array:
        values = self._values.take(pa.array(local))
        if pa.types.is_dictionary(self.arrow_type):  # Arrow casts numbers to a dictionary only encoded
            values = values.dictionary_encode()
        return values.cast(self.arrow_type)

    def decode_point(self, probs: np.ndarray, statistic: str = "mean") -> pa.Array:
        return self._take(np.argmax(probs, axis=1))

    def decode_sample(
        self, local: np.ndarray, rng: np.random.Generator, within: np.ndarray | None = None
    ) -> pa.Array:
        return self._take(local)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "categories": self.categories}

    @classmethod
    def from_dict(cls, state: dict[str, Any], arrow_type: pa.DataType) -> CategoricalCodec:
        return cls(state["name"], arrow_type, state["categories"])


CODECS = {"numeric": NumericCodec, "categorical": CategoricalCodec}
