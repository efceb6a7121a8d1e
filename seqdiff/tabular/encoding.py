"""One token per cell: per-column vocabularies concatenated into one flat vocabulary.

Categorical columns get one token per category seen in training; numeric columns get quantile bins,
with bins in a heavy tail split further (see `TableEncoder.fit`; the per-column codecs are in
`seqdiff.tabular.codecs`, the file readers in `seqdiff.tabular.files`).
Token ids of column j are ``offsets[j] .. offsets[j] + vocab_sizes[j] - 1``; a missing cell is the
shared ``mask_id == vocab_size``.

Stated behaviours:

- fitting uses observed cells only (null, and NaN in floating columns, are missing);
- an all-missing modelled column is skipped: not encoded, never imputed, listed in
  `TableEncoder.skipped` (reported by `seqdiff.tabular.fitting.fit_table`); its cells stay missing;
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
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.codecs import CODECS, CategoricalCodec, NumericCodec
from seqdiff.tabular.schema import Schema, TableLike, infer_schema, to_arrow

N_BINS = 32
# Quantile bins wider than this many standard deviations are split (see codecs.bin_edges); 0 turns it off.
MAX_BIN_WIDTH = 0.25
NUMERIC_POINTS = ("median", "mean")  # point estimates of a numeric cell from its predictive distribution
STATE_FORMAT = "seqdiff.table_encoder/1"

Rng = np.random.Generator | int | None


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

    def __init__(self, schema: Schema, codecs: list[NumericCodec | CategoricalCodec], skipped: list[str]):
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
        of the column's standard deviations and holds 2 `MIN_SPLIT_ROWS` values, the widest such bin is
        split at its median, up to 2 `n_bins` bins (0: quantile bins only).

        Example:
            >>> import pandas as pd
            >>> df = pd.DataFrame({"x": [float(i) for i in range(100)]})
            >>> TableEncoder.fit(df, n_bins=4, max_bin_width=0).token_names
            ['x=[0,25)', 'x=[25,50)', 'x=[50,75)', 'x=[75,99]']
            >>> tail = pd.DataFrame({"x": [*range(60), *range(100, 4100, 100)]}, dtype=float)  # a long tail
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
                    codec = NumericCodec.fit(name, column, n_bins, max_bin_width)
                else:
                    codec = CategoricalCodec.fit(name, column)
            except SeqdiffError as exc:
                raise SeqdiffError(f"{source}: {exc}") from exc
            if codec is None:
                skipped.append(name)
            else:
                codecs.append(codec)
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
            CODECS[c["kind"]].from_dict(c, arrow_schema.field(c["name"]).type) for c in state["columns"]
        ]
        return cls(Schema.from_dict(state["schema"]), codecs, list(state["skipped"]))
