"""A scikit-learn imputer and synthesiser for mixed-type tables, backed by one masked-diffusion model.

Every modelled cell is one token (quantile bins for numeric columns, categories for categorical ones;
see `seqdiff.tabular.encoding`). The model is MD4 (or GenMD4) trained on the observed cells only:
missing cells are the mask token, masked throughout and left out of the loss. Imputation keeps the
observed cells of a row as context and samples its missing cells with the ancestral sampler; a
synthetic row is a row with every cell missing (or only some cells given).

Stated behaviours:

- only cells that are null (or NaN) in the input are written; every other cell is copied unchanged, so
  the output equals the input wherever the input had a value; dtypes, index and column order are kept;
- passthrough columns, columns that were all-missing at fit time (skipped, logged) and columns the model
  was not trained on are returned untouched;
- a category not seen at fit time is treated as missing for the model's context (with a warning) but
  the cell itself is kept as it is in the output;
- a table whose modelled columns are missing or of an incompatible type is a one-line SeqdiffError
  naming the column; a table with a single row, or a constant column, is handled like any other;
- randomness is keyed by (seed, draw, global row number), so a row is imputed the same way whatever
  batch it comes in: `seqdiff.tabular.stream.impute_file` equals an in-memory `transform`.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1.0, 2.0, None, 4.0] * 25, "c": ["x", "y", "x", None] * 25})
    >>> imputer = MaskedDiffusionImputer(dim=32, n_layers=1, n_heads=2, max_steps=50)
    >>> imputer.fit_transform(df).isna().any().any()  # doctest: +SKIP
    False
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from seqdiff.core.bundle import ModelSpec, load_bundle, save_bundle
from seqdiff.core.device import resolve_device
from seqdiff.core.diffusion import WEIGHTINGS
from seqdiff.core.noise import KeyedNoise
from seqdiff.core.sampling import sample
from seqdiff.errors import SeqdiffError
from seqdiff.tabular.encoding import NUMERIC_POINTS, TableEncoder, _from_values, _numeric_values
from seqdiff.tabular.model import TIE_RATES, TableRows, init_ordered_bins, table_spec
from seqdiff.tabular.schema import Schema, TableLike, infer_schema, to_arrow
from seqdiff.training.config import ModelConfig, TrainerConfig
from seqdiff.training.module import DiffusionModule, OptimConfig, extension_round
from seqdiff.training.train import fit_module

logger = logging.getLogger(__name__)

SCHEDULES = ("linear", "cosine", "polynomial", "geometric", "genmd4")
LOSS_WEIGHTINGS = ("auto", *WEIGHTINGS)
POINT_ESTIMATES = ("predictive", "draws")
PRECISIONS = ("auto", "32-true", "bf16-mixed")  # Lightning's names
PREDICT_BLOCK = 1024  # rows per network call of the predictive estimate (a fixed shape, see _predict)
DECODE_BLOCK = 1024  # global rows per in-bin-draw generator: values do not depend on the batching
SAMPLER_CELLS = 8_000_000  # rows x columns x vocab per sampler call: it holds float64 tensors of that size
WARMUP_STEPS = 100
VALIDATION_EVERY = 100  # training steps between two early-stopping checks
EXTENSION_RESTART = 0.5  # each round past max_steps restarts the learning rate at this x its peak
MAX_VALIDATION_CELLS = 20_000  # held-out cells at most: a check costs a few training steps, not more
SAMPLING_GRID = "cosine"


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's start-up banner and its hints about data loaders (an estimator's fit stays
    quiet; its own progress bar and log messages remain)."""
    lightning_logger = logging.getLogger("lightning.pytorch")
    level = lightning_logger.level
    lightning_logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PossibleUserWarning)
            # Lightning 2.6 with recent torch: an internal deprecation, nothing a user can act on.
            warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)")
            yield
    finally:
        lightning_logger.setLevel(level)


class _FitProgress(L.Callback):
    """A tqdm bar (stderr) over training steps, showing the training NELBO per cell, and an
    optional ``on_step(done, total)`` callback (the app's progress bar)."""

    def __init__(self, disable: bool | None, on_step: Callable[[int, int], None] | None = None):
        self.disable = disable
        self.on_step = on_step
        self.bar: Any = None

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.bar = tqdm(total=module.optim.total_steps, desc="fitting", unit="step", disable=self.disable)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        # The planned steps; past them (training extended while it still improves), the steps so far.
        total = max(module.optim.total_steps, trainer.global_step)
        self.bar.total = total
        self.bar.update(1)
        if self.on_step is not None:
            self.on_step(trainer.global_step, total)
        nelbo = trainer.callback_metrics.get("train/nelbo")
        if nelbo is not None and trainer.global_step % 10 == 0:
            self.bar.set_postfix(nelbo=f"{float(nelbo):.3f}")

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.bar.close()


class _TimeBudget(L.Callback):
    """With a time limit, end the cosine learning-rate decay when the time runs out, not at max_steps.

    Every 20 steps the schedule's ``total_steps`` (read by `DiffusionModule`'s LR lambda at each step)
    becomes the steps that still fit in the budget at the average speed so far, capped at max_steps.
    """

    def __init__(self, minutes: float, max_steps: int):
        self.seconds, self.max_steps = 60 * minutes, max_steps
        self.start = 0.0

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step % 20 or step >= module.optim.total_steps:  # past it, extension rounds keep their end
            return
        elapsed = time.perf_counter() - self.start
        fits = step + int((self.seconds - elapsed) * step / elapsed)
        module.optim.total_steps = max(step + 1, min(self.max_steps, fits))


def hold_out_cells(
    tokens: np.ndarray, mask_id: int, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Hide a random ``fraction`` of the observed cells from training (at most MAX_VALIDATION_CELLS).

    Returns (the training tokens, with those cells masked; the held-out tokens, ``mask_id`` elsewhere).
    The input is not modified.

    Example:
        >>> train, held = hold_out_cells(np.array([[0, 1], [2, 3]]), 4, 0.5, np.random.default_rng(0))
        >>> bool(((train == 4) == (held != 4)).all())
        True
    """
    cells = np.flatnonzero(tokens != mask_id)
    n_held = min(int(round(fraction * len(cells))), MAX_VALIDATION_CELLS)
    picked = rng.choice(cells, n_held, replace=False)
    train, held = tokens.copy(), np.full_like(tokens, mask_id)
    held.flat[picked] = tokens.flat[picked]
    train.flat[picked] = mask_id
    return train, held


class _EarlyStopping(L.Callback):
    """Every VALIDATION_EVERY steps, score the EMA model on the held-out cells: their mean negative
    log-likelihood given the rest of their row, all of them masked at once (the condition `transform`
    predicts in), in the training precision (bf16 autocast where training used it). After
    ``patience`` checks without improvement training stops; at the end the EMA weights of the best
    check are restored, and ``history`` holds every (step, NLL).

    Once the learning-rate schedule has ended (``module.optim.total_steps``), training goes on in
    rounds of `extension_round` steps (each a warm restart of the rate, `warmup_cosine`) while the
    best NLL fell by more than ``extend_tol`` (relative) over the last quarter of the schedule's
    steps, when the schedule and each round end; the Trainer's max_steps caps the rounds."""

    def __init__(
        self,
        context: np.ndarray,
        within: np.ndarray,
        held: np.ndarray,
        mask_id: int,
        patience: int,
        extend_tol: float,
    ):
        rows = np.flatnonzero((held != mask_id).any(axis=1))
        self.context, self.within, self.held = context[rows], within[rows].astype(np.float32), held[rows]
        self.mask_id, self.patience, self.extend_tol = mask_id, patience, extend_tol
        self.history: list[tuple[int, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None

    @property
    def best(self) -> tuple[int, float]:
        return min(self.history, key=lambda item: item[1])

    def still_improving(self, step: int, window: int) -> bool:
        """Whether the best NLL fell by more than extend_tol over the last `window` steps."""
        before = [nll for at, nll in self.history if at <= step - window]
        return bool(before) and self.best[1] < min(before) * (1 - self.extend_tol)

    @torch.no_grad()
    def score(self, model: torch.nn.Module) -> float:
        device = next(model.parameters()).device
        total, count = 0.0, 0
        for start in range(0, len(self.context), PREDICT_BLOCK):
            z = torch.as_tensor(self.context[start : start + PREDICT_BLOCK], device=device)
            w = torch.as_tensor(self.within[start : start + PREDICT_BLOCK], device=device)
            x = torch.as_tensor(self.held[start : start + PREDICT_BLOCK], device=device)
            scored = x != self.mask_id
            logp = model.log_prob_of(model.slot_log_probs(z, within=w, needed=scored), x)
            total += float(-logp[scored].sum())
            count += int(scored.sum())
        return total / count

    def check(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        step = trainer.global_step
        if self.history and self.history[-1][0] == step:
            return
        with trainer.precision_plugin.forward_context():  # the training precision: bf16 where native
            nll = self.score(module.ema)
        if not self.history or nll < self.best[1]:
            self.best_state = {k: v.detach().clone() for k, v in module.ema.state_dict().items()}
        self.history.append((step, nll))
        stalled = step - self.best[0] >= self.patience * VALIDATION_EVERY
        planned = module.optim.total_steps
        window = max(VALIDATION_EVERY, planned // 4)
        if stalled or (_round_end(step, planned) and not self.still_improving(step, window)):
            trainer.should_stop = True

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step % VALIDATION_EVERY == 0 or _round_end(step, module.optim.total_steps):
            self.check(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.check(trainer, module)
        if self.best_state is not None:
            module.ema.load_state_dict(self.best_state)


def _round_end(step: int, schedule_steps: int) -> bool:
    """Whether `step` ends the learning-rate schedule or a round of training past it."""
    return step >= schedule_steps and (step - schedule_steps) % extension_round(schedule_steps) == 0


@dataclass
class _Draws:
    """Sampled imputations of one table.

    ``missing`` [rows, n_columns]: input cells (of the modelled columns) that were null or NaN;
    ``rows`` [m]: the rows with at least one such cell; ``tokens`` [K, m, n_columns] and ``tables``
    (K decoded Arrow tables of m rows): the K draws of those rows.
    """

    missing: np.ndarray
    rows: np.ndarray
    tokens: np.ndarray
    tables: list[pa.Table]


def _draw_seed(seed: int, draw: int) -> int:
    """The KeyedNoise seed of draw `draw` (a 32-bit hash, so it fits the int64 key arithmetic)."""
    return int(np.random.SeedSequence([seed, draw]).generate_state(1)[0])


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


class MaskedDiffusionImputer(TransformerMixin, BaseEstimator):
    """Impute missing cells of mixed-type tables, and sample synthetic rows, with masked diffusion.

    Args:
        n_bins: quantile bins per numeric column.
        max_bin_width: then, while a numeric column's bin spans more than this many of its standard
            deviations and holds at least 16 training values, the widest such bin is split at its median,
            up to 2 n_bins bins (`TableEncoder.fit`; 0: quantile bins only). Heavy tails get finer bins:
            at 20,000 rows the default (0.25) lowered MAE against quantile bins alone on five of the six
            benchmark tables, by 0.4-5% (California 0.310 -> 0.296), and left adult level; at a second
            seed California and magic improved again and beijing was level (BENCHMARKS.md, "Bins in
            heavy tails").
        value_frequencies: besides its bin, the model sees where each observed numeric value lies in its
            column: sines and cosines of pi 2^k q for k < value_frequencies, q in [0, 1] its bin's index
            plus its place inside the bin, over the number of bins
            (`seqdiff.core.denoiser.ValueEmbedding`); 0: the bin alone. At 20,000 rows the default (5)
            lowered MAE on magic, california and beijing by 1-4% against 0, and 10 did no better
            (BENCHMARKS.md, "Exact values as input").
        dim, n_layers, n_heads: transformer size (one token per column).
        schedule: masking schedule (linear = MD4, genmd4 = learned per-token rates).
        tie_rates: for genmd4, one rate per column value ("value") or per column ("column").
        loss_weighting: the training objective (`MaskedDiffusion`'s ``weighting``). "uniform": the mean
            cross-entropy over masked cells, every masking rate weighted alike; "elbo": MD4's NELBO,
            which weights a cell masked at rate t by 1/t. "auto" (default): uniform for the MD4
            schedules, elbo for genmd4 (its rates learn through the ELBO). At 20,000 rows uniform had
            the lower MAE on 5 of the 6 benchmark tables; at 1,000 rows the two were level
            (BENCHMARKS.md, "The training objective").
        max_steps, max_minutes: training budget (whichever ends first; with early stopping, training
            may go past max_steps, see max_extra_steps); lr: peak AdamW learning rate (linear warmup,
            then cosine decay that ends with the budget); batch_rows: rows per batch.
        max_extra_steps, extend_tol: with early stopping, training may go past max_steps. When the
            schedule ends there, and the held-out cells' best NLL fell by more than extend_tol
            (relative) over its last quarter, training goes on in rounds of max_steps / 2 steps, each
            restarting the learning rate at half its peak and decaying it again; after each round the
            same test decides whether another follows, up to max_extra_steps in all (0: never). Tables
            still learning at max_steps get more steps, the others stop there (BENCHMARKS.md,
            "Training past max_steps").
        early_stopping: hold out ``validation_fraction`` of the observed cells (at most 20,000) from
            training; every 100 steps score the model on them (their negative log-likelihood given the
            rest of their row, which is how `transform` predicts); stop once ``n_iter_no_change``
            checks in a row bring no improvement, and keep the weights of the best check. On by
            default: on 1,000-row tables 2,000 fixed steps overfit, and early stopping imputed
            better on all six benchmark tables (California: MAE 0.415 against 0.436, stopping at
            step 700 and keeping step 200; BENCHMARKS.md, "Early stopping").
        sampling_steps: sampler steps per row (default: as many as the row has cells to fill, so the
            number of modelled columns for a synthetic row; on California 1 step imputed as accurately as
            10, 8 times faster, but draws its cells independently given the observed ones).
        point: how `transform` makes its one value per missing cell. "predictive" (default): from the
            model's predictive distribution of the cell given the row's observed cells, in one network
            pass per row: for numeric columns its mean (sum over bins of p(bin) x the mean of the
            training values in the bin) or median (see `numeric_point`), rounded for integer columns,
            and the most probable category. "draws": from `n_samples` joint draws of the row's missing
            cells (the sampler), their mean or median (numeric) or most frequent draw (categorical;
            the first category on ties).
        numeric_point: "median" (default) or "mean" of a numeric cell's predictive distribution (or
            draws). The median minimises the expected absolute error, the mean the squared error.
        n_samples: draws per missing cell in `transform` with ``point="draws"``.
        categorical, numeric: column kind overrides (see `seqdiff.tabular.schema.infer_schema`).
        max_fit_rows: `fit` trains on a random subsample of this many rows of larger tables (logged).
        device: auto, cpu or cuda[:N].
        precision: training precision. "auto" (default): bf16 autocast where bf16 matmuls are native (a
            GPU, or a CPU with AVX512-BF16 or AMX), float32 elsewhere; "bf16-mixed"; "32-true". On this
            project's CPU bf16 fitted 1.5-1.6 times faster with the same scores (BENCHMARKS.md, "bf16 on
            CPU"). Imputing always runs in float32.
        seed: model initialisation, training noise and sampling noise.
        progress: tqdm bars on stderr for fitting and imputing (None: only when stderr is a terminal).

    The defaults are sized for a CPU: on California (5,000 rows, 30% MCAR) a 64-wide, 2-layer model
    trained for the same minutes imputed better than a 128-wide, 3-layer one (more steps), and 32 bins
    better than 64. On a GPU, more steps and a larger model are cheap.

    Fitted attributes: ``schema_``, ``encoder_`` (`TableEncoder`), ``spec_`` (`ModelSpec`), ``model_``
    (the EMA `MaskedDiffusion`), ``feature_names_in_``, ``n_features_in_``, ``training_`` (steps, rows,
    minutes, final training NELBO per cell, the objective's weighting, the training precision, and the
    early-stopping record).

    Example:
        >>> imputer = MaskedDiffusionImputer(max_steps=500).fit(df)  # doctest: +SKIP
        >>> filled = imputer.transform(df)  # doctest: +SKIP
        >>> synthetic = imputer.sample(1000, fixed={"genre": "Action"})  # doctest: +SKIP
    """

    def __init__(
        self,
        n_bins: int = 32,
        max_bin_width: float = 0.25,
        value_frequencies: int = 5,
        dim: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        schedule: str = "linear",
        tie_rates: str = "value",
        loss_weighting: str = "auto",
        max_steps: int = 2000,
        max_extra_steps: int = 2000,
        extend_tol: float = 0.004,
        max_minutes: float | None = None,
        early_stopping: bool = True,
        validation_fraction: float = 0.05,
        n_iter_no_change: int = 5,
        batch_rows: int = 256,
        lr: float = 3e-3,
        sampling_steps: int | None = None,
        point: str = "predictive",
        numeric_point: str = "median",
        n_samples: int = 1,
        categorical: tuple[str, ...] | list[str] = (),
        numeric: tuple[str, ...] | list[str] = (),
        max_fit_rows: int = 200_000,
        device: str = "auto",
        precision: str = "auto",
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

    # ----------------------------------------------------------------------------------------- fitting
    def _check_params(self) -> None:
        positive = [
            "n_bins",
            "dim",
            "n_layers",
            "n_heads",
            "max_steps",
            "batch_rows",
            "n_samples",
            "n_iter_no_change",
        ]
        for name in [*positive, "max_fit_rows"]:
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise SeqdiffError(f"{name} must be a positive integer, got {value!r}")
        for name in ["value_frequencies", "max_extra_steps"]:
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 0:
                raise SeqdiffError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ["extend_tol", "max_bin_width"]:
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0:  # `not >=` also refuses NaN
                raise SeqdiffError(f"{name} must be a non-negative number, got {value!r}")
        if self.sampling_steps is not None and self.sampling_steps < 1:
            raise SeqdiffError(f"sampling_steps must be at least 1, got {self.sampling_steps}")
        if self.point not in POINT_ESTIMATES:
            raise SeqdiffError(f"point must be one of {', '.join(POINT_ESTIMATES)}, not {self.point!r}")
        if self.numeric_point not in NUMERIC_POINTS:
            raise SeqdiffError(
                f"numeric_point must be one of {', '.join(NUMERIC_POINTS)}, not {self.numeric_point!r}"
            )
        if self.schedule not in SCHEDULES:
            raise SeqdiffError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if self.tie_rates not in TIE_RATES:
            raise SeqdiffError(f"tie_rates must be one of {', '.join(TIE_RATES)}, not {self.tie_rates!r}")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise SeqdiffError(
                f"loss_weighting must be one of {', '.join(LOSS_WEIGHTINGS)}, not {self.loss_weighting!r}"
            )
        if self.precision not in PRECISIONS:
            raise SeqdiffError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise SeqdiffError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.lr <= 0 or (self.max_minutes is not None and self.max_minutes <= 0):
            raise SeqdiffError("lr and max_minutes must be positive")
        if not 0 < self.validation_fraction < 1:
            raise SeqdiffError(
                f"validation_fraction must be between 0 and 1, got {self.validation_fraction!r}"
            )

    def _weighting(self) -> str:
        if self.loss_weighting != "auto":
            return self.loss_weighting
        return "elbo" if self.schedule == "genmd4" else "uniform"

    def fit(
        self,
        X: TableLike,
        y: None = None,
        *,
        source: str = "table",
        on_step: Callable[[int, int], None] | None = None,
    ) -> MaskedDiffusionImputer:
        """Infer the schema, fit the encoder and train the model on the observed cells of `X`.

        `source` names the table in error messages (e.g. its file path); `on_step(done, total)` is
        called after every training step (a progress bar).

        Example:
            >>> MaskedDiffusionImputer(max_steps=200).fit(df).training_["steps"]  # doctest: +SKIP
            200
        """
        self._check_params()
        table = _as_table(X, source)
        n_rows = table.num_rows
        if n_rows > self.max_fit_rows:
            keep = np.random.default_rng(self.seed).choice(n_rows, self.max_fit_rows, replace=False)
            table = table.take(np.sort(keep))
            logger.info(
                "%s: fitting on a random subsample of %d of %d rows (max_fit_rows)", source, len(keep), n_rows
            )
        schema = infer_schema(table, self.categorical, self.numeric, source=source)
        encoder = TableEncoder.fit(
            table, schema, n_bins=self.n_bins, max_bin_width=self.max_bin_width, source=source
        )
        if encoder.skipped:
            logger.warning(
                "%s: column(s) %s have no observed value: not modelled, left missing",
                source,
                ", ".join(map(repr, encoder.skipped)),
            )
        tokens = encoder.encode(table, source=source)
        within = encoder.within(table, source=source)
        held = None
        if self.early_stopping:
            tokens, held = hold_out_cells(
                tokens, encoder.mask_id, self.validation_fraction, np.random.default_rng(self.seed)
            )
            if (held == encoder.mask_id).all():
                logger.warning("%s: too few observed cells to hold any out: early stopping is off", source)
                held = None
        cfg = ModelConfig(
            dim=self.dim,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            schedule=self.schedule,
            tie_rates=self.tie_rates,
            weighting=self._weighting(),
        )
        spec = table_spec(encoder, cfg, self.value_frequencies)
        device = resolve_device(self.device)
        start = time.perf_counter()
        module, steps, nelbo, stopping, precision = self._train(
            encoder, spec, tokens, within, device, on_step, held
        )
        self.schema_: Schema = schema
        self.encoder_: TableEncoder = encoder
        self.spec_: ModelSpec = spec
        self.model_ = module.ema.to(device).eval()
        self.feature_names_in_ = np.asarray(table.column_names, dtype=object)
        self.n_features_in_ = table.num_columns
        self.training_ = {
            "steps": steps,
            "schedule_steps": module.optim.total_steps,
            "rows": table.num_rows,
            "minutes": (time.perf_counter() - start) / 60,
            "train_nelbo_per_cell": nelbo,
            "weighting": spec.weighting,
            "precision": precision,
        }
        if stopping is not None:
            best_step, best_nll = stopping.best
            self.training_.update(
                best_step=best_step,
                validation_nll_per_cell=best_nll,
                validation_history=stopping.history,
                held_out_cells=int((held != encoder.mask_id).sum()),
            )
        return self

    def _train(
        self,
        encoder: TableEncoder,
        spec: ModelSpec,
        tokens: np.ndarray,
        within: np.ndarray,
        device: torch.device,
        on_step: Callable[[int, int], None] | None = None,
        held: np.ndarray | None = None,
    ) -> tuple[DiffusionModule, int, float | None, _EarlyStopping | None, str]:
        """Train with the shared Lightning module (EMA, warmup-cosine AdamW), with early stopping on the
        ``held`` cells when given; (module, steps, NELBO, the early-stopping record or None, precision)."""
        optim = OptimConfig(
            lr=self.lr,
            warmup_steps=min(WARMUP_STEPS, max(1, self.max_steps // 10)),
            total_steps=self.max_steps,
            restart_ratio=EXTENSION_RESTART,
        )
        trainer_cfg = TrainerConfig(
            max_steps=self.max_steps + (self.max_extra_steps if held is not None else 0),
            max_minutes=self.max_minutes,
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=[device.index or 0] if device.type == "cuda" else 1,
            log_every_steps=10,
            precision=self.precision,
            progress_bar=False,
            seed=self.seed,
        )
        data = TableRows(tokens, within, min(self.batch_rows, len(tokens)), seed=self.seed)
        progress = None if self.progress is None else not self.progress
        # Leave the caller's global RNG as it was; the seed alone fixes initialisation and training.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            module = DiffusionModule(spec.to_dict(), asdict(optim), seed=self.seed)
            init_ordered_bins(module.model, encoder)
            module.ema.load_state_dict(module.model.state_dict())
            callbacks: list[L.Callback] = [_FitProgress(progress, on_step)]
            if self.max_minutes:
                callbacks.append(_TimeBudget(self.max_minutes, self.max_steps))
            stopping = None
            if held is not None:
                stopping = _EarlyStopping(
                    tokens, within, held, spec.mask_id, self.n_iter_no_change, self.extend_tol
                )
                callbacks.append(stopping)
            with _quiet_lightning():
                trainer = fit_module(module, data, trainer_cfg, callbacks=callbacks, validate=False)
        nelbo = trainer.callback_metrics.get("train/nelbo")
        nelbo = None if nelbo is None else float(nelbo)
        return module, trainer.global_step, nelbo, stopping, str(trainer.precision)

    # -------------------------------------------------------------------------------------- sampling
    def _encode(
        self, table: pa.Table, source: str, on_unseen: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(tokens [rows, n_columns] with missing cells masked, where each numeric value lies inside its
        bin, missing cells, rows with one)."""
        check_is_fitted(self, "model_")
        enc = self.encoder_
        tokens = enc.encode(table, on_unseen=on_unseen, source=source)
        missing = np.zeros(tokens.shape, bool)
        for j, name in enumerate(enc.columns):
            missing[:, j] = pc.is_null(table.column(name), nan_is_null=True).to_numpy(zero_copy_only=False)
        return tokens, enc.within(table, source=source), missing, np.flatnonzero(missing.any(axis=1))

    @torch.no_grad()
    def _predict(self, table: pa.Table, first_row: int, source: str) -> _Draws:
        """The predictive point estimate of every missing cell given its row's observed cells.

        One network pass per row with all its missing cells masked: what MD4 is trained to predict, so
        the conditional mean / mode needs no sampling (and no Monte-Carlo error). Rows go through the
        network in blocks of fixed shape aligned to global row numbers (unused slots masked): a row's
        floating-point result, hence its value, is the same whichever batch or file slice it comes in.
        """
        tokens, within, missing, rows = self._encode(table, source, "mask")
        enc = self.encoder_
        device = next(self.model_.parameters()).device
        block = min(PREDICT_BLOCK, max(1, SAMPLER_CELLS // (len(enc.columns) * self.model_.vocab_size)))
        probs = [np.empty((len(rows), n), np.float32) for n in enc.vocab_sizes]
        slots = (first_row + rows) % block
        bounds = np.flatnonzero(np.diff((first_row + rows) // block)) + 1
        for part in np.split(np.arange(len(rows)), bounds):
            if len(part) == 0:
                continue
            z = np.full((block, len(enc.columns)), enc.mask_id, np.int64)
            z[slots[part]] = tokens[rows[part]]
            w = np.full(z.shape, np.nan, np.float32)
            w[slots[part]] = within[rows[part]]
            logp = self.model_.slot_log_probs(
                torch.as_tensor(z, device=device), within=torch.as_tensor(w, device=device)
            )
            p = logp.exp()[slots[part]].cpu().numpy()
            for j, size in enumerate(enc.vocab_sizes):
                probs[j][part] = p[:, j, :size]  # column j's slot k is its token offsets[j] + k
        mode = np.stack([p.argmax(axis=1) + o for p, o in zip(probs, enc.offsets, strict=True)], axis=1)
        return _Draws(missing, rows, mode[None], [enc.decode_point(probs, self.numeric_point)])

    def _impute(
        self, table: pa.Table, first_row: int, n_draws: int, seed: int, source: str, on_unseen: str = "mask"
    ) -> _Draws:
        """Sample `n_draws` imputations of the rows of `table` that have a missing modelled cell."""
        enc = self.encoder_
        tokens, within, missing, rows = self._encode(table, source, on_unseen)
        n_columns = len(enc.columns)
        sampled = np.empty((n_draws, len(rows), n_columns), np.int64)
        sampled_within = np.full(sampled.shape, np.nan)
        device = next(self.model_.parameters()).device
        # Rows are sampled in groups of equal masked-cell count m, with m steps by default (one cell decided
        # per step on average): a row's steps depend on the row alone, so batching does not change it.
        masked = (tokens[rows] == enc.mask_id).sum(axis=1)
        groups = [np.flatnonzero(masked == m) for m in np.unique(masked)]
        progress = None if self.progress is None else not self.progress
        per_call = max(1, SAMPLER_CELLS // (n_columns * self.model_.vocab_size))
        bar = tqdm(total=n_draws * len(rows), desc="sampling", unit="row", disable=progress, leave=False)
        with bar:
            for k in range(n_draws):
                noise_seed = _draw_seed(seed, k)
                for group in groups:
                    steps = self.sampling_steps or int(masked[group[0]])
                    for start in range(0, len(group), per_call):
                        part = group[start : start + per_call]
                        z = torch.as_tensor(tokens[rows[part]], device=device)
                        w = torch.as_tensor(within[rows[part]], dtype=torch.float32, device=device)
                        keys = torch.as_tensor(first_row + rows[part], dtype=torch.long)
                        noise = KeyedNoise(noise_seed, keys)
                        result = sample(
                            self.model_, z, steps=steps, grid=SAMPLING_GRID, noise=noise, within=w
                        )
                        sampled[k, part] = result.tokens.cpu().numpy()
                        if result.within is not None:
                            sampled_within[k, part] = result.within.cpu().numpy()
                        bar.update(len(part))
        tables = [
            self._decode(sampled[k], sampled_within[k], first_row + rows, (seed, k)) for k in range(n_draws)
        ]
        return _Draws(missing, rows, sampled, tables)

    def _decode(
        self, tokens: np.ndarray, within: np.ndarray, rows: np.ndarray, key: tuple[int, int]
    ) -> pa.Table:
        """Values for `tokens` of the ascending global row numbers `rows`: numeric ones at `within`
        inside their bins (the sampler's draws), where that is NaN drawn from the bin.

        Those in-bin values are drawn by one generator per block of DECODE_BLOCK global rows, seeded
        by (key, block), over the whole block (rows not given are filled with a valid token): a row's
        values do not depend on which other rows are decoded with it.
        """
        enc = self.encoder_
        if len(rows) == 0:
            return enc.decode_sample(np.empty((0, len(enc.columns)), np.int64))
        blocks = rows // DECODE_BLOCK
        bounds = np.flatnonzero(np.diff(blocks)) + 1
        pieces = []
        for part in np.split(np.arange(len(rows)), bounds):
            block = int(blocks[part[0]])
            local = rows[part] - block * DECODE_BLOCK
            full = np.repeat(enc.offsets[None], DECODE_BLOCK, axis=0)
            full[local] = tokens[part]
            full_within = np.full(full.shape, np.nan)
            full_within[local] = within[part]
            decoded = enc.decode_sample(full, rng=np.random.default_rng([*key, block]), within=full_within)
            pieces.append(decoded.take(local))
        return pa.concat_tables(pieces)

    def _point(self, draws: _Draws) -> pa.Table:
        """One value per cell from K draws: the mean or median (numeric) or the most frequent value
        (categorical)."""
        if len(draws.tables) == 1:
            return draws.tables[0]
        enc = self.encoder_
        n = len(draws.rows)
        columns = []
        for j, name in enumerate(enc.columns):
            arrays = [t.column(name).combine_chunks() for t in draws.tables]
            if enc.kinds[j] == "numeric":
                values = np.stack([_numeric_values(a)[0] for a in arrays])
                floating = pa.types.is_floating(arrays[0].type)
                if self.numeric_point == "median" and floating:
                    point = np.median(values, axis=0)
                elif self.numeric_point == "median":  # the lower median keeps integers and timestamps exact
                    point = np.sort(values, axis=0)[(len(values) - 1) // 2]
                elif floating:
                    point = values.mean(axis=0)
                else:
                    # Mean of differences: int64 nanosecond timestamps exceed float64 precision.
                    point = values[0] + np.rint((values - values[0]).mean(axis=0)).astype(np.int64)
                columns.append(_from_values(point, arrays[0].type))
            else:
                local = draws.tokens[:, :, j] - enc.offsets[j]
                counts = np.zeros((n, enc.vocab_sizes[j]), np.int64)
                np.add.at(counts, (np.broadcast_to(np.arange(n), local.shape), local), 1)
                first_draw = (local == counts.argmax(axis=1)).argmax(axis=0)
                columns.append(pa.concat_arrays(arrays).take(first_draw * n + np.arange(n)))
        return pa.Table.from_arrays(columns, names=enc.columns)

    # -------------------------------------------------------------------------------------- filling
    def _spread(self, n_rows: int, draws: _Draws, values: pa.Table) -> dict[str, pa.Array]:
        """Per modelled column with a missing cell: `values` at rows `draws.rows`, nulls elsewhere."""
        index = np.full(n_rows, -1, np.int64)
        index[draws.rows] = np.arange(len(draws.rows))
        take = pa.array(index, mask=index < 0)
        return {
            name: values.column(name).combine_chunks().take(take)
            for j, name in enumerate(self.encoder_.columns)
            if draws.missing[:, j].any()
        }

    def _fill_arrow(self, table: pa.Table, draws: _Draws, values: pa.Table) -> pa.Table:
        """`table` with its missing modelled cells taken from `values` (rows `draws.rows`)."""
        for name, imputed in self._spread(table.num_rows, draws, values).items():
            i = table.schema.get_field_index(name)
            original = table.column(i).combine_chunks()
            if pa.types.is_null(original.type):
                column = imputed  # an all-null input column takes the training type
            else:
                try:
                    imputed = imputed.cast(original.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SeqdiffError(
                        f"column {name!r}: imputed values do not fit its type {original.type} "
                        f"({str(exc).splitlines()[0]})"
                    ) from exc
                missing = draws.missing[:, self.encoder_.columns.index(name)]
                column = pc.if_else(pa.array(missing), imputed, original)
            table = table.set_column(i, table.schema.field(i).with_type(column.type), column)
        return table

    def _fill_frame(self, df: pd.DataFrame, draws: _Draws, values: pa.Table) -> pd.DataFrame:
        """A copy of `df` with its missing modelled cells taken from `values`; dtypes kept."""
        out = df.copy()
        names = [str(c) for c in df.columns]
        for name, imputed in self._spread(len(df), draws, values).items():
            i = names.index(name)
            column = df.iloc[:, i]
            missing = draws.missing[:, self.encoder_.columns.index(name)]
            replacement = imputed.to_pandas().set_axis(df.index).astype(column.dtype)
            out.isetitem(i, column.where(~missing, replacement))
        return out

    def _output(self, X: TableLike, draws: _Draws, values: pa.Table) -> TableLike:
        if isinstance(X, pd.DataFrame):
            return self._fill_frame(X, draws, values)
        return self._fill_arrow(to_arrow(X), draws, values)

    # ------------------------------------------------------------------------------------ public API
    def transform(self, X: TableLike) -> TableLike:
        """Fill the missing cells of `X` (a DataFrame, or an Arrow table / record batch, returned as the
        same kind: a DataFrame, or an Arrow table) with the point estimate of `n_samples` draws.

        Example:
            >>> imputer.transform(pd.DataFrame({"a": [1.0, None], "c": [None, "x"]}))  # doctest: +SKIP
        """
        draws = self._estimate(_as_table(X, "table"), 0, None, "table")
        return self._output(X, draws, self._point(draws))

    def transform_samples(self, X: TableLike, n_samples: int) -> list[TableLike]:
        """`n_samples` imputed copies of `X`, one per draw (the draws `transform` averages).

        Example:
            >>> [t["a"][1] for t in imputer.transform_samples(df, 3)]  # doctest: +SKIP
            [1.9, 2.4, 2.1]
        """
        if n_samples < 1:
            raise SeqdiffError(f"n_samples must be at least 1, got {n_samples}")
        draws = self._impute(_as_table(X, "table"), 0, n_samples, self.seed, "table")
        return [self._output(X, draws, values) for values in draws.tables]

    def impute_arrow(
        self, table: pa.Table, *, first_row: int = 0, n_samples: int | None = None, source: str = "table"
    ) -> pa.Table:
        """`transform` for an Arrow table holding rows ``first_row ..`` of a larger table: the global row
        numbers key the randomness, so imputing a file batch by batch equals imputing it whole.

        Example:
            >>> imputer.impute_arrow(batch_table, first_row=65_536)  # doctest: +SKIP
        """
        draws = self._estimate(table, first_row, n_samples, source)
        return self._fill_arrow(table, draws, self._point(draws))

    def _estimate(self, table: pa.Table, first_row: int, n_samples: int | None, source: str) -> _Draws:
        """The draws behind `transform`'s point estimate (see ``point``)."""
        if self.point == "predictive":
            return self._predict(table, first_row, source)
        return self._impute(table, first_row, n_samples or self.n_samples, self.seed, source)

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

        Example:
            >>> imputer.sample(3, fixed={"genre": "Action"})["genre"].tolist()  # doctest: +SKIP
            ['Action', 'Action', 'Action']
        """
        check_is_fitted(self, "model_")
        if not isinstance(n_rows, int | np.integer) or n_rows < 1:
            raise SeqdiffError(f"n_rows must be a positive integer, got {n_rows!r}")
        partial = self._partial_rows(int(n_rows), fixed)
        draws = self._impute(partial, 0, 1, self.seed if seed is None else seed, "fixed", on_unseen="error")
        return self._fill_arrow(partial, draws, draws.tables[0]).to_pandas()

    def _partial_rows(self, n_rows: int, fixed: Mapping[str, Any] | TableLike | None) -> pa.Table:
        """The modelled columns in their training types: the `fixed` cells, nulls elsewhere."""
        enc = self.encoder_
        types = enc.decode_sample(np.empty((0, len(enc.columns)), np.int64)).schema
        if fixed is None:
            given: dict[str, Any] = {}
        elif isinstance(fixed, Mapping):
            given = {str(name): pa.repeat(pa.scalar(value), n_rows) for name, value in fixed.items()}
        else:
            table = _as_table(fixed, "fixed")
            if table.num_rows != n_rows:
                raise SeqdiffError(f"fixed: {table.num_rows} partial rows given for n_rows={n_rows}")
            given = {name: table.column(name) for name in table.column_names}
        unknown = sorted(set(given) - set(enc.columns))
        if unknown:
            raise SeqdiffError(
                f"fixed: column(s) {', '.join(map(repr, unknown))} are not modelled "
                f"(modelled columns: {', '.join(enc.columns)})"
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

    def learned_rates(self) -> pd.DataFrame:
        """GenMD4's learned rate per token (``column=value``), highest first: a higher rate keeps a token
        unmasked longer in the forward process, so it tends to be decided earlier when sampling.

        Example:
            >>> MaskedDiffusionImputer(schedule="genmd4").fit(df).learned_rates().head(3)  # doctest: +SKIP
        """
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
        these parameters and the training summary.

        Example:
            >>> imputer.save("runs/adult-imputer")  # doctest: +SKIP
        """
        check_is_fitted(self, "model_")
        extra = {
            "modality": "table",
            "schema": self.schema_.to_dict(),
            "encoder": self.encoder_.to_dict(),
            "imputer": _jsonable(self.get_params()),
            "training": self.training_,
        }
        return save_bundle(folder, self.model_, self.spec_, extra)

    @classmethod
    def load(cls, folder: str | Path, device: str | None = None) -> MaskedDiffusionImputer:
        """Load a table model saved by `save` (or exported by ``seqdiff train`` with ``modality: table``).

        Example:
            >>> imputer = MaskedDiffusionImputer.load("runs/adult-imputer", device="cpu")  # doctest: +SKIP
        """
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


def _as_table(X: Any, source: str) -> pa.Table:
    if not isinstance(X, pd.DataFrame | pa.Table | pa.RecordBatch):
        raise SeqdiffError(
            f"{source}: expected a pandas DataFrame or a pyarrow Table, got {type(X).__name__}"
        )
    return to_arrow(X, source)
