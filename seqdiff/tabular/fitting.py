"""Fit a table model: encode the observed cells, hold some out for early stopping, and train with the
shared Lightning module and callbacks (`seqdiff.training`). `MaskedDiffusionImputer.fit` calls `fit_table`.

Example:
    >>> import pandas as pd
    >>> table = pa.Table.from_pandas(pd.DataFrame({"x": [1.0, 2.0, None] * 20, "c": ["a", None, "b"] * 20}))
    >>> fitted = fit_table(table, FitSettings(dim=16, n_layers=1, n_heads=2, max_steps=3), device="cpu")
    >>> fitted.training["steps"], fitted.encoder.columns
    (3, ['x', 'c'])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import lightning as L
import numpy as np
import pyarrow as pa
import torch

from seqdiff.core.bundle import ModelSpec
from seqdiff.core.device import resolve_device
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.tabular.encoding import TableEncoder
from seqdiff.tabular.model import TableRows, init_ordered_bins, rows_per_pass, table_spec
from seqdiff.tabular.schema import Schema, infer_schema
from seqdiff.tabular.settings import FitSettings
from seqdiff.training.callbacks import EarlyStopping, StepProgress, TimeBudget
from seqdiff.training.config import ModelConfig, TrainerConfig
from seqdiff.training.module import DiffusionModule, OptimConfig
from seqdiff.training.train import fit_module, quiet_lightning

logger = logging.getLogger(__name__)

WARMUP_STEPS = 100
VALIDATION_EVERY = 100  # training steps between two early-stopping checks
EXTENSION_RESTART = 0.5  # each round past max_steps restarts the learning rate at this x its peak
MAX_VALIDATION_CELLS = 20_000  # held-out cells at most: a check costs a few training steps, not more
SCORE_BLOCK = 1024  # rows per network call when scoring the held-out cells (fewer for wide tables)


@dataclass
class FittedTable:
    """What `fit_table` learned: the schema, the encoder, the model spec, the EMA model (in eval mode),
    and the training record (``training_`` of the imputer)."""

    schema: Schema
    encoder: TableEncoder
    spec: ModelSpec
    model: MaskedDiffusion
    training: dict


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


class HeldOutCells:
    """The score early stopping watches: the mean negative log-likelihood of the held-out cells given
    the rest of their row (``context``, ``within``), all of them masked at once: the condition
    `transform` predicts in.

    Example:
        >>> import pandas as pd
        >>> from seqdiff.core.bundle import build_model
        >>> enc = TableEncoder.fit(pd.DataFrame({"c": ["a", "b"] * 5}))
        >>> tokens = enc.encode(pd.DataFrame({"c": ["a", "b"] * 5}))
        >>> train, held = hold_out_cells(tokens, enc.mask_id, 0.5, np.random.default_rng(0))
        >>> score = HeldOutCells(train, np.full(tokens.shape, np.nan), held, enc.mask_id)
        >>> model = build_model(table_spec(enc, ModelConfig(dim=16, n_layers=1, n_heads=2)))
        >>> score(model) > 0
        True
    """

    def __init__(self, context: np.ndarray, within: np.ndarray, held: np.ndarray, mask_id: int):
        rows = np.flatnonzero((held != mask_id).any(axis=1))
        self.context, self.within, self.held = context[rows], within[rows].astype(np.float32), held[rows]
        self.mask_id = mask_id

    @torch.no_grad()
    def __call__(self, model: MaskedDiffusion) -> float:
        device = next(model.parameters()).device
        total, count = 0.0, 0
        block = rows_per_pass(model, self.context.shape[1], SCORE_BLOCK)
        for start in range(0, len(self.context), block):
            z = torch.as_tensor(self.context[start : start + block], device=device)
            w = torch.as_tensor(self.within[start : start + block], device=device)
            x = torch.as_tensor(self.held[start : start + block], device=device)
            scored = x != self.mask_id
            logp = model.log_prob_of(model.slot_log_probs(z, within=w, needed=scored), x)
            total += float(-logp[scored].sum())
            count += int(scored.sum())
        return total / count


def fit_table(
    table: pa.Table,
    settings: FitSettings,
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    device: str = "auto",
    seed: int = 0,
    progress: bool | None = False,
    on_step: Callable[[int, int], None] | None = None,
    source: str = "table",
) -> FittedTable:
    """Infer the schema (with the `categorical` / `numeric` overrides), fit the encoder and train the
    model on the observed cells of `table`; batch size and step counts left to None are worked out for
    its columns (`FitSettings.for_table`). `progress`: the tqdm bar (None: when stderr is a terminal);
    `on_step(done, total)`: called after every training step."""
    schema = infer_schema(table, categorical, numeric, source=source)
    encoder = TableEncoder.fit(
        table, schema, n_bins=settings.n_bins, max_bin_width=settings.max_bin_width, source=source
    )
    empty = [c.name for c in schema.columns if c.arrow_type == "null"] + encoder.skipped
    if empty:
        names = ", ".join(map(repr, sorted(empty, key=table.column_names.index)))
        logger.warning("%s: column(s) %s have no observed value: not modelled, left empty", source, names)
    kept = [
        c for c in schema.columns if c.kind == "passthrough" and not c.identifier and c.arrow_type != "null"
    ]
    if kept:
        names = ", ".join(f"{c.name!r} ({c.arrow_type})" for c in kept)
        logger.warning("%s: column(s) %s: not modelled, copied unchanged", source, names)
    settings = settings.for_table(len(encoder.columns), table.num_rows)
    tokens = encoder.encode(table, source=source)
    within = encoder.within(table, source=source)
    held = None
    if settings.early_stopping:
        tokens, held = hold_out_cells(
            tokens, encoder.mask_id, settings.validation_fraction, np.random.default_rng(seed)
        )
        if (held == encoder.mask_id).all():
            logger.warning("%s: too few observed cells to hold any out: early stopping is off", source)
            held = None
    cfg = ModelConfig(
        dim=settings.dim,
        n_layers=settings.n_layers,
        n_heads=settings.n_heads,
        schedule=settings.schedule,
        tie_rates=settings.tie_rates,
        weighting=settings.weighting(),
    )
    spec = table_spec(encoder, cfg, settings.value_frequencies)
    torch_device = resolve_device(device)
    start = time.perf_counter()
    stopping = (
        None
        if held is None
        else EarlyStopping(
            HeldOutCells(tokens, within, held, spec.mask_id),
            settings.n_iter_no_change,
            every=VALIDATION_EVERY,
            extend_tol=settings.extend_tol,
        )
    )
    callbacks: list[L.Callback] = [StepProgress(on_step, bar=progress, label="fitting")]
    if settings.max_minutes:
        callbacks.append(TimeBudget(settings.max_minutes, settings.max_steps))
    if stopping is not None:
        callbacks.append(stopping)
    module, trainer = _train(encoder, spec, tokens, within, settings, torch_device, seed, callbacks)
    nelbo = trainer.callback_metrics.get("train/nelbo")
    training = {
        "steps": trainer.global_step,
        "schedule_steps": module.optim.total_steps,
        "batch_rows": settings.batch_rows,
        "rows": table.num_rows,
        "minutes": (time.perf_counter() - start) / 60,
        "train_nelbo_per_cell": None if nelbo is None else float(nelbo),
        "weighting": spec.weighting,
        "optimizer": settings.optimizer,
        "precision": str(trainer.precision),
    }
    if stopping is not None:
        best_step, best_nll = stopping.best
        training.update(
            best_step=best_step,
            validation_nll_per_cell=best_nll,
            validation_history=stopping.history,
            held_out_cells=int((held != encoder.mask_id).sum()),
        )
    return FittedTable(schema, encoder, spec, module.ema.to(torch_device).eval(), training)


def _train(
    encoder: TableEncoder,
    spec: ModelSpec,
    tokens: np.ndarray,
    within: np.ndarray,
    settings: FitSettings,
    device: torch.device,
    seed: int,
    callbacks: list[L.Callback],
) -> tuple[DiffusionModule, L.Trainer]:
    """Train with the shared Lightning module (EMA, warmup-cosine AdamW); with early stopping among the
    callbacks, up to max_extra_steps past max_steps."""
    optim = OptimConfig(
        lr=settings.lr,
        optimizer=settings.optimizer,
        warmup_steps=min(WARMUP_STEPS, max(1, settings.max_steps // 10)),
        total_steps=settings.max_steps,
        restart_ratio=EXTENSION_RESTART,
    )
    extending = any(isinstance(c, EarlyStopping) for c in callbacks)
    trainer_cfg = TrainerConfig(
        max_steps=settings.max_steps + (settings.max_extra_steps if extending else 0),
        max_minutes=settings.max_minutes,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=[device.index or 0] if device.type == "cuda" else 1,
        log_every_steps=10,
        precision=settings.precision,
        progress_bar=False,
        seed=seed,
    )
    data = TableRows(tokens, within, settings.batch_rows, seed=seed)
    # Leave the caller's global RNG as it was; the seed alone fixes initialisation and training.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        module = DiffusionModule(spec.to_dict(), asdict(optim), seed=seed)
        init_ordered_bins(module.model, encoder)
        module.ema.load_state_dict(module.model.state_dict())
        with quiet_lightning():
            trainer = fit_module(module, data, trainer_cfg, callbacks=callbacks, validate=False)
    return module, trainer
