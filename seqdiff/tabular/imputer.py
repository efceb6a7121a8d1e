"""A scikit-learn imputer and synthesiser for mixed-type tables, backed by one masked-diffusion model.

Every modelled cell is one token (quantile bins for numeric columns, categories for categorical ones;
see `seqdiff.tabular.encoding`). The model is MD4 (or GenMD4) trained on the observed cells only
(`seqdiff.tabular.fitting`): missing cells are the mask token, masked throughout and left out of the
loss. Imputation keeps the observed cells of a row as context and predicts or samples its missing cells
(`seqdiff.tabular.prediction`), then writes them back (`seqdiff.tabular.filling`); a synthetic row is a
row with every cell missing (or only some cells given).

Stated behaviours:

- only cells that are null (or NaN) in the input are written; every other cell is copied unchanged, so
  the output equals the input wherever the input had a value; dtypes, index and column order are kept;
- passthrough columns (identifiers among them: strings or integers, every value distinct; see
  `seqdiff.tabular.schema.infer_schema`), columns that were all-missing at fit time (skipped, logged)
  and columns the model was not trained on are returned untouched;
- a category not seen at fit time is treated as missing for the model's context (with a warning) but
  the cell itself is kept as it is in the output;
- a table whose modelled columns are missing or of an incompatible type is a one-line SeqdiffError
  naming the column; a table with a single row, or a constant column, is handled like any other;
- randomness is keyed by (seed, draw, global row number), so a row is imputed the same way whatever
  batch it comes in: `seqdiff.tabular.stream.impute_file` equals an in-memory `transform`.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1.0, 2.0, None, 4.0] * 25, "c": ["x", "y", "x", None] * 25})
    >>> imputer = MaskedDiffusionImputer(dim=32, n_layers=1, n_heads=2, max_steps=20, device="cpu")
    >>> bool(imputer.fit_transform(df).isna().any().any())
    False
    >>> imputer.sample(3, fixed={"c": "y"})["c"].tolist()
    ['y', 'y', 'y']
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from seqdiff.core.bundle import load_bundle, save_bundle
from seqdiff.core.device import resolve_device
from seqdiff.errors import SeqdiffError
from seqdiff.tabular.encoding import NUMERIC_POINTS, TableEncoder
from seqdiff.tabular.filling import as_table, fill, fill_arrow, frame_of_array, is_array, partial_rows
from seqdiff.tabular.fitting import fit_table
from seqdiff.tabular.prediction import POINT_ESTIMATES, Draws, point_of_draws, predict, sample_draws
from seqdiff.tabular.schema import Schema, TableLike
from seqdiff.tabular.settings import FitSettings, check_choice

logger = logging.getLogger(__name__)

_FIT = FitSettings  # the fit settings' defaults are FitSettings' field defaults


class MaskedDiffusionImputer(TransformerMixin, BaseEstimator):
    """Impute missing cells of mixed-type tables, and sample synthetic rows, with masked diffusion.

    BENCHMARKS.md has the measurements behind the defaults.

    Args:
        n_bins: quantile bins per numeric column.
        max_bin_width: then split the widest numeric bin spanning more than this many of its column's
            standard deviations at its median, up to 2 n_bins bins (0: quantile bins only).
        value_frequencies: the model also sees where each observed number lies in its column, as sines
            and cosines at this many frequencies (0: its bin alone).
        dim, n_layers, n_heads: transformer size (one token per column).
        schedule: masking schedule (linear = MD4, genmd4 = learned per-token rates).
        tie_rates: for genmd4, one rate per column value ("value") or per column ("column").
        loss_weighting: the training objective: "uniform" (mean cross-entropy over masked cells),
            "elbo" (MD4's NELBO) or "auto" (uniform for the MD4 schedules, elbo for genmd4).
        max_steps: the learning-rate schedule's length in training steps (warmup, then cosine decay;
            None: as many as show the model 512,000 rows, 2,000 batches of 256).
        max_extra_steps: with early stopping, at most this many steps past max_steps, in rounds of
            max_steps / 2, while the held-out cells still improve (0: never; None: one round).
        extend_tol: the held-out NLL's relative fall over the last quarter of max_steps above which
            training goes past max_steps, or on to another round.
        max_minutes: a training time limit (the schedule then ends with it; whichever ends first).
        early_stopping: hold out validation_fraction of the observed cells (at most 20,000), score them
            every 100 steps, stop after n_iter_no_change checks without improvement, keep the best.
        validation_fraction, n_iter_no_change: the held-out share and the patience of early stopping.
        batch_rows: rows per training batch (None: 256, or 4,096 cells' worth for tables of fewer than
            16 columns: a step has a fixed cost, so a narrow table's step carries more rows).
        lr: peak learning rate.
        optimizer: "muon" (Muon for the transformer's weight matrices, AdamW for embeddings, positions
            and the output head; `seqdiff.training.optim`), "adamw", or "auto" (muon for tables of at
            least 16,000 training rows, adamw below).
        sampling_steps: sampler steps per row of a draw (None: one per cell to fill, each drawn given
            the cells drawn before it: joint draws; fewer is faster, and draws the cells decided in
            the same step independently of each other).
        point: how `transform` makes one value per missing cell: "predictive" (from the predictive
            distribution given the row's observed cells, one network pass) or "draws" (from n_samples
            joint draws of the row's missing cells).
        numeric_point: "median" (least absolute error) or "mean" (least squared error) of a numeric
            cell's distribution or draws; categorical cells take the most probable or most drawn value.
        n_samples: draws per missing cell in `transform` with ``point="draws"``.
        categorical, numeric: column kind overrides (see `seqdiff.tabular.schema.infer_schema`).
        max_fit_rows: `fit` trains on a random subsample of this many rows of larger tables (logged).
        device: auto, cpu or cuda[:N].
        precision: training precision: "auto" (bf16 autocast where bf16 matmuls are native, else
            float32), "bf16-mixed" or "32-true"; imputing always runs in float32.
        seed: model initialisation, training noise and sampling noise.
        progress: tqdm bars on stderr for fitting and imputing (None: only when stderr is a terminal).

    Fitted attributes: ``schema_``, ``encoder_`` (`TableEncoder`), ``spec_`` (`ModelSpec`), ``model_``
    (the EMA `MaskedDiffusion`), ``feature_names_in_``, ``n_features_in_``, ``training_`` (steps,
    schedule steps, batch rows, rows, minutes, final training NELBO per cell, the objective's weighting,
    the optimizer, the training precision, and the early-stopping record).
    """

    def __init__(
        self,
        n_bins: int = _FIT.n_bins,
        max_bin_width: float = _FIT.max_bin_width,
        value_frequencies: int = _FIT.value_frequencies,
        dim: int = _FIT.dim,
        n_layers: int = _FIT.n_layers,
        n_heads: int = _FIT.n_heads,
        schedule: str = _FIT.schedule,
        tie_rates: str = _FIT.tie_rates,
        loss_weighting: str = _FIT.loss_weighting,
        max_steps: int | None = _FIT.max_steps,
        max_extra_steps: int | None = _FIT.max_extra_steps,
        extend_tol: float = _FIT.extend_tol,
        max_minutes: float | None = _FIT.max_minutes,
        early_stopping: bool = _FIT.early_stopping,
        validation_fraction: float = _FIT.validation_fraction,
        n_iter_no_change: int = _FIT.n_iter_no_change,
        batch_rows: int | None = _FIT.batch_rows,
        lr: float = _FIT.lr,
        optimizer: str = _FIT.optimizer,
        sampling_steps: int | None = None,
        point: str = "predictive",
        numeric_point: str = "median",
        n_samples: int = 1,
        categorical: tuple[str, ...] | list[str] = (),
        numeric: tuple[str, ...] | list[str] = (),
        max_fit_rows: int = _FIT.max_fit_rows,
        device: str = "auto",
        precision: str = _FIT.precision,
        seed: int = 0,
        progress: bool | None = False,
    ):
        self.n_bins = n_bins
        self.max_bin_width = max_bin_width
        self.value_frequencies = value_frequencies
        self.dim = dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.schedule = schedule
        self.tie_rates = tie_rates
        self.loss_weighting = loss_weighting
        self.max_steps = max_steps
        self.max_extra_steps = max_extra_steps
        self.extend_tol = extend_tol
        self.max_minutes = max_minutes
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.batch_rows = batch_rows
        self.lr = lr
        self.optimizer = optimizer
        self.sampling_steps = sampling_steps
        self.point = point
        self.numeric_point = numeric_point
        self.n_samples = n_samples
        self.categorical = categorical
        self.numeric = numeric
        self.max_fit_rows = max_fit_rows
        self.device = device
        self.precision = precision
        self.seed = seed
        self.progress = progress

    def _check_params(self) -> FitSettings:
        """The fit settings, once every parameter is checked (a one-line SeqdiffError otherwise)."""
        settings = FitSettings.of(self.get_params())
        settings.check()
        if not isinstance(self.n_samples, int | np.integer) or self.n_samples < 1:
            raise SeqdiffError(f"n_samples must be a positive integer, got {self.n_samples!r}")
        if self.sampling_steps is not None and self.sampling_steps < 1:
            raise SeqdiffError(f"sampling_steps must be at least 1, got {self.sampling_steps}")
        check_choice("point", self.point, POINT_ESTIMATES)
        check_choice("numeric_point", self.numeric_point, NUMERIC_POINTS)
        if not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise SeqdiffError(f"seed must be a non-negative integer, got {self.seed!r}")
        return settings

    def fit(
        self,
        X: TableLike,
        y: None = None,
        *,
        source: str = "table",
        on_step: Callable[[int, int], None] | None = None,
    ) -> MaskedDiffusionImputer:
        """Infer the schema, fit the encoder and train the model on the observed cells of `X` (a
        DataFrame, an Arrow table or record batch, or a 2-D array, whose columns are then x0, x1, ...).

        `source` names the table in error messages (e.g. its file path); `on_step(done, total)` is
        called after every training step (a progress bar).
        """
        settings = self._check_params()
        table = as_table(X, source)
        n_rows = table.num_rows
        if n_rows > self.max_fit_rows:
            keep = np.random.default_rng(self.seed).choice(n_rows, self.max_fit_rows, replace=False)
            table = table.take(np.sort(keep))
            logger.info(
                "%s: fitting on a random subsample of %d of %d rows (max_fit_rows)", source, len(keep), n_rows
            )
        fitted = fit_table(
            table,
            settings,
            categorical=self.categorical,
            numeric=self.numeric,
            device=self.device,
            seed=self.seed,
            progress=self.progress,
            on_step=on_step,
            source=source,
        )
        self.schema_ = fitted.schema
        self.encoder_ = fitted.encoder
        self.spec_ = fitted.spec
        self.model_ = fitted.model
        self.feature_names_in_ = np.asarray(table.column_names, dtype=object)
        self.n_features_in_ = table.num_columns
        self.training_ = fitted.training
        return self

    # ------------------------------------------------------------------------------------ imputing
    def _estimate(self, table: pa.Table, first_row: int, n_samples: int | None, source: str) -> Draws:
        """The draws behind `transform`'s point estimate (see ``point``)."""
        check_is_fitted(self, "model_")
        if self.point == "predictive":
            return predict(self.model_, self.encoder_, table, first_row, self.numeric_point, source)
        return self._sample(table, first_row, n_samples or self.n_samples, self.seed, source)

    def _sample(
        self, table: pa.Table, first_row: int, n_draws: int, seed: int, source: str, on_unseen: str = "mask"
    ) -> Draws:
        check_is_fitted(self, "model_")
        self._check_params()  # sampling_steps may have been set since the fit
        return sample_draws(
            self.model_,
            self.encoder_,
            table,
            first_row,
            n_draws,
            seed,
            sampling_steps=self.sampling_steps,
            progress=self.progress,
            source=source,
            on_unseen=on_unseen,
        )

    def transform(self, X: TableLike) -> TableLike:
        """Fill the missing cells of `X` (a DataFrame, an Arrow table / record batch, or a 2-D array
        whose columns are the fitted ones in order, returned as the same kind: a DataFrame, an Arrow
        table, a NumPy array) with the point estimate of ``point``."""
        frame = self._readable(X)
        draws = self._estimate(as_table(frame, "table"), 0, None, "table")
        filled = fill(self.encoder_, frame, draws, point_of_draws(self.encoder_, draws, self.numeric_point))
        return filled.to_numpy() if is_array(X) else filled

    def transform_samples(self, X: TableLike, n_samples: int) -> list[TableLike]:
        """`n_samples` imputed copies of `X`, one per draw (the draws `transform` summarises with
        ``point="draws"``)."""
        if n_samples < 1:
            raise SeqdiffError(f"n_samples must be at least 1, got {n_samples}")
        frame = self._readable(X)
        draws = self._sample(as_table(frame, "table"), 0, n_samples, self.seed, "table")
        filled = [fill(self.encoder_, frame, draws, values) for values in draws.tables]
        return [f.to_numpy() for f in filled] if is_array(X) else filled

    def _readable(self, X: TableLike) -> TableLike:
        """`X` as given, or an array as a DataFrame of the fitted columns (read once, filled, returned
        as an array again)."""
        check_is_fitted(self, "model_")
        return frame_of_array(X, self.feature_names_in_)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing cells are what it fills
        tags.input_tags.string = True  # text columns are categories
        tags.input_tags.categorical = True
        return tags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The output's column names: the input's, all of them in order (scikit-learn's
        ``set_output(transform="pandas")`` names an array's output with them)."""
        check_is_fitted(self, "n_features_in_")
        names = self.feature_names_in_ if input_features is None else np.asarray(input_features, dtype=object)
        if len(names) != self.n_features_in_:
            raise SeqdiffError(f"input_features: {len(names)} names for {self.n_features_in_} columns")
        return np.asarray(names, dtype=object)

    def impute_arrow(
        self, table: pa.Table, *, first_row: int = 0, n_samples: int | None = None, source: str = "table"
    ) -> pa.Table:
        """`transform` for an Arrow table holding rows ``first_row ..`` of a larger table: the global row
        numbers key the randomness, so imputing a file batch by batch equals imputing it whole."""
        draws = self._estimate(table, first_row, n_samples, source)
        return fill_arrow(
            self.encoder_, table, draws, point_of_draws(self.encoder_, draws, self.numeric_point)
        )

    def impute_arrow_draws(
        self, table: pa.Table, n_samples: int, *, first_row: int = 0, source: str = "table"
    ) -> list[pa.Table]:
        """`impute_arrow` with ``point="draws"`` from `n_samples` draws, followed by each draw's imputed
        table: the pooled estimate and the K completed tables that multiple imputation analyses."""
        draws = self._sample(table, first_row, n_samples, self.seed, source)
        point = point_of_draws(self.encoder_, draws, self.numeric_point)
        return [fill_arrow(self.encoder_, table, draws, values) for values in (point, *draws.tables)]

    def sample(
        self,
        n_rows: int,
        fixed: Mapping[str, Any] | pd.DataFrame | pa.Table | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """`n_rows` synthetic rows of the modelled columns (training order and types).

        `fixed` conditions the rows: ``{"column": value}`` gives that value to every row; a DataFrame (or
        Arrow table) of `n_rows` partial rows gives, cell by cell, the values to keep (its null cells are
        sampled). Fixed cells appear unchanged in the output; a category not seen in training, an unknown
        column or a value that does not fit the column's type is a SeqdiffError.
        """
        check_is_fitted(self, "model_")
        if not isinstance(n_rows, int | np.integer) or n_rows < 1:
            raise SeqdiffError(f"n_rows must be a positive integer, got {n_rows!r}")
        partial = partial_rows(self.encoder_, int(n_rows), fixed)
        draws = self._sample(partial, 0, 1, self.seed if seed is None else seed, "fixed", on_unseen="error")
        return fill_arrow(self.encoder_, partial, draws, draws.tables[0]).to_pandas()

    def learned_rates(self) -> pd.DataFrame:
        """GenMD4's learned rate per token (``column=value``), highest first: a higher rate keeps a token
        unmasked longer in the forward process, so it tends to be decided earlier when sampling."""
        check_is_fitted(self, "model_")
        if not self.model_.genmd4:
            raise SeqdiffError(
                f"learned_rates: the model uses the fixed {self.spec_.schedule!r} schedule; "
                "rates are learned with schedule='genmd4'"
            )
        rates = self.model_.schedule.rates().detach().cpu().numpy()[: self.encoder_.vocab_size]
        table = pd.DataFrame({"token": self.encoder_.token_names, "rate": rates.astype(np.float64)})
        return table.sort_values("rate", ascending=False, kind="stable", ignore_index=True)

    # -------------------------------------------------------------------------------- persistence
    def save(self, folder: str | Path) -> Path:
        """Save the model bundle: safetensors weights, and JSON with the spec, schema, encoder state,
        these parameters and the training summary."""
        check_is_fitted(self, "model_")
        extra = {
            "modality": "table",
            "schema": self.schema_.to_dict(),
            "encoder": self.encoder_.to_dict(),
            "imputer": {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()},
            "training": self.training_,
        }
        return save_bundle(folder, self.model_, self.spec_, extra)

    @classmethod
    def load(cls, folder: str | Path, device: str | None = None) -> MaskedDiffusionImputer:
        """Load a table model saved by `save` (or by an older seqdiff: settings it lacks take the values
        its model was trained with)."""
        model, spec, extra = load_bundle(folder)
        if extra.get("modality") != "table":
            raise SeqdiffError(f"{folder}: not a table model (modality: {extra.get('modality')!r})")
        d = spec.denoiser
        params = {"dim": d.dim, "n_layers": d.n_layers, "n_heads": d.n_heads, "schedule": spec.schedule}
        params.update(extra.get("imputer", {}))
        params["value_frequencies"] = d.value_frequencies  # what the model has (0 in older bundles)
        params.setdefault("max_bin_width", 0.0)  # older bundles' bins are quantile bins alone
        params.setdefault("max_extra_steps", 0)  # and they trained for max_steps at most
        if device is not None:
            params["device"] = device
        try:
            imputer = cls(**params)
        except TypeError as exc:
            raise SeqdiffError(f"{folder}: unknown imputer settings ({exc})") from None
        imputer.schema_ = Schema.from_dict(extra["schema"])
        imputer.encoder_ = TableEncoder.from_dict(extra["encoder"])
        imputer.spec_ = spec
        imputer.model_ = model.to(resolve_device(imputer.device)).eval()
        imputer.feature_names_in_ = np.asarray(imputer.schema_.names, dtype=object)
        imputer.n_features_in_ = len(imputer.schema_.names)
        imputer.training_ = extra.get("training", {})
        return imputer
