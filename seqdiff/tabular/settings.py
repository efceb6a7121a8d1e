"""The fit settings of a table model, declared once: `FitSettings`, with the ``seqdiff impute`` flag and
help text of the settings that have one in their field metadata.

`MaskedDiffusionImputer` takes these as constructor parameters (with these defaults); the CLI and the
tabular benchmark build their flags with `add_fit_flags`, and read them back with `given_fit_settings`.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_fit_flags(parser)
    >>> given_fit_settings(parser.parse_args(["--bins", "8", "--no-early-stopping"]))
    {'n_bins': 8, 'early_stopping': False}
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.encoding import MAX_BIN_WIDTH, N_BINS
from seqdiff.training.lr_schedule import extension_round

# The default training budget. Each batch holds at least BATCH_ROWS rows and BATCH_CELLS cells: a step
# has a fixed cost besides its per-row one, so a narrow table's step carries more rows (BENCHMARKS.md,
# "Batch size"). The schedule then lasts as many steps as show the model SCHEDULE_ROWS rows.
BATCH_ROWS = 256
BATCH_CELLS = 4096
SCHEDULE_ROWS = 2000 * BATCH_ROWS
# Muon learns a table of many rows faster than AdamW (the schedule then covers it few times); on fewer
# rows, where held-out cells stop improving within the schedule, AdamW generalised better (BENCHMARKS.md,
# "Why the defaults").
MUON_ROWS = 16_000
SCHEDULES = ("linear", "cosine", "polynomial", "geometric", "genmd4")  # seqdiff.core.schedules, and genmd4
TIE_RATES = ("value", "column")
OPTIMIZERS = ("auto", "muon", "adamw")  # "auto", and seqdiff.training.optim.OPTIMIZERS
LOSS_WEIGHTINGS = ("auto", "elbo", "uniform")  # "auto", and seqdiff.core.diffusion.WEIGHTINGS
PRECISIONS = ("auto", "32-true", "bf16-mixed")  # Lightning's names


def _flag(flag: str, help: str, **argparse_options: Any) -> dict[str, Any]:
    """Field metadata of a setting that ``seqdiff impute`` exposes as `flag` (`argparse_options`: its
    type, metavar or action); ``{default}`` in `help` is the setting's default."""
    return {"flag": flag, "help": help, "argparse": argparse_options}


@dataclass(frozen=True)
class FitSettings:
    """How a table model is fitted: its encoding, size, objective and training budget.

    `MaskedDiffusionImputer`'s docstring describes each setting.

    Example:
        >>> FitSettings(schedule="genmd4").weighting()
        'elbo'
    """

    max_steps: int | None = field(
        default=None,
        metadata=_flag(
            "--max-steps",
            "training steps when fitting: the learning-rate schedule's length (default: as many as show "
            "the model 512,000 rows, 2,000 batches of 256)",
            type=int,
        ),
    )
    max_extra_steps: int | None = field(
        default=None,
        metadata=_flag(
            "--max-extra-steps",
            "with early stopping, train past --max-steps, in rounds of half of it, by at most this many "
            "steps while the held-out cells still improve (default: one round, half of --max-steps; 0: never)",
            type=int,
        ),
    )
    extend_tol: float = field(
        default=0.004,
        metadata=_flag(
            "--extend-tol",
            "the held-out cells' relative improvement over the last quarter of --max-steps steps above "
            "which training goes past it, or on to another round (default {default})",
            type=float,
            metavar="FRACTION",
        ),
    )
    max_minutes: float | None = field(
        default=None,
        metadata=_flag(
            "--max-minutes",
            "training time limit when fitting (default: none; whichever ends first)",
            type=float,
        ),
    )
    n_bins: int = field(
        default=N_BINS,
        metadata=_flag(
            "--bins", "quantile bins per numeric column when fitting (default {default})", type=int
        ),
    )
    max_bin_width: float = field(
        default=MAX_BIN_WIDTH,
        metadata=_flag(
            "--max-bin-width",
            "when fitting, split numeric bins wider than this many standard deviations of their column at "
            "their median while each half keeps 8 values, up to twice --bins (default {default}; 0: quantile "
            "bins only)",
            type=float,
            metavar="SD",
        ),
    )
    value_frequencies: int = field(
        default=5,
        metadata=_flag(
            "--value-frequencies",
            "periodic features of each observed number's place in its column, at this many frequencies, "
            "besides its bin (default {default}; 0: the bin alone)",
            type=int,
        ),
    )
    batch_rows: int | None = field(
        default=None,
        metadata=_flag(
            "--fit-batch-rows",
            "rows per training batch when fitting (default: 256, or 4,096 cells' worth for tables of "
            "fewer than 16 columns)",
            type=int,
        ),
    )
    early_stopping: bool = field(
        default=True,
        metadata=_flag(
            "--early-stopping",
            "when fitting, hold out 5%% of the observed cells and stop once they stop improving "
            "(default: on)",
            action=argparse.BooleanOptionalAction,
        ),
    )
    n_iter_no_change: int = field(
        default=3,
        metadata=_flag(
            "--n-iter-no-change",
            "with early stopping, stop after this many checks of the held-out cells (one per 100 steps) "
            "without improvement (default {default})",
            type=int,
            metavar="N",
        ),
    )
    loss_weighting: str = field(
        default="auto",
        metadata=_flag(
            "--loss-weighting",
            "training objective when fitting: uniform (mean cross-entropy over masked cells), elbo (MD4's "
            "NELBO), or auto (default: uniform)",
            metavar="{auto,uniform,elbo}",
        ),
    )
    optimizer: str = field(
        default="auto",
        metadata=_flag(
            "--optimizer",
            "optimizer when fitting: muon (Muon for the transformer's weight matrices, AdamW for the rest), "
            f"adamw, or auto (default: muon from {MUON_ROWS:,} training rows, adamw below)",
            metavar="{auto,muon,adamw}",
        ),
    )
    precision: str = field(
        default="auto",
        metadata=_flag(
            "--precision",
            "training precision when fitting (default auto: bf16 autocast where bf16 is native, a GPU or "
            "an AVX512-BF16 / AMX CPU; else 32-true)",
            metavar="{auto,32-true,bf16-mixed}",
        ),
    )

    n_layers: int = field(
        default=1,
        metadata=_flag(
            "--n-layers",
            "transformer layers of the table model (default {default}; 2 fits about twice as long for a "
            "somewhat lower error)",
            type=int,
            metavar="L",
        ),
    )

    dim: int = 64
    n_heads: int = 4
    schedule: str = "linear"
    tie_rates: str = "value"
    validation_fraction: float = 0.05
    lr: float = 3e-3
    max_fit_rows: int = 200_000

    @classmethod
    def of(cls, params: dict[str, Any]) -> FitSettings:
        """The fit settings among an imputer's parameters (`get_params`)."""
        return cls(**{f.name: params[f.name] for f in fields(cls)})

    def for_table(self, n_columns: int, n_rows: int) -> FitSettings:
        """These settings for a table of `n_columns` modelled columns and `n_rows` training rows: a batch
        no larger than the table, and the batch size and step counts left to their defaults (None)
        worked out (at most 2,000 steps in the schedule).

        Example:
            >>> narrow, wide = FitSettings().for_table(10, 20_000), FitSettings().for_table(24, 20_000)
            >>> (narrow.batch_rows, narrow.max_steps, narrow.max_extra_steps), (wide.batch_rows, wide.max_steps)
            ((410, 1249, 624), (256, 2000))
            >>> small = FitSettings(max_extra_steps=0).for_table(10, 100)
            >>> small.batch_rows, small.max_steps, small.max_extra_steps, small.optimizer, narrow.optimizer
            (100, 2000, 0, 'adamw', 'muon')
        """
        batch = self.batch_rows
        if batch is None:
            batch = max(BATCH_ROWS, -(-BATCH_CELLS // max(n_columns, 1)))
        batch = max(1, min(batch, n_rows))
        steps = self.max_steps
        if steps is None:
            steps = round(SCHEDULE_ROWS / max(batch, BATCH_ROWS))
        extra = extension_round(steps) if self.max_extra_steps is None else self.max_extra_steps
        optimizer = self.optimizer
        if optimizer == "auto":
            optimizer = "muon" if n_rows >= MUON_ROWS else "adamw"
        return replace(self, batch_rows=batch, max_steps=steps, max_extra_steps=extra, optimizer=optimizer)

    def weighting(self) -> str:
        """The training objective: ``loss_weighting``, with "auto" uniform for the MD4 schedules and elbo
        for genmd4 (its rates learn through the ELBO)."""
        if self.loss_weighting != "auto":
            return self.loss_weighting
        return "elbo" if self.schedule == "genmd4" else "uniform"

    def check(self) -> None:
        """A one-line SeqdiffError naming the first setting out of its range."""
        for name in ["n_bins", "dim", "n_layers", "n_heads", "n_iter_no_change", "max_fit_rows"]:
            _check_integer(name, getattr(self, name), 1, "a positive")
        for name in ["max_steps", "batch_rows"]:  # None: worked out for the table (`for_table`)
            if getattr(self, name) is not None:
                _check_integer(name, getattr(self, name), 1, "a positive")
        _check_integer("value_frequencies", self.value_frequencies, 0, "a non-negative")
        if self.max_extra_steps is not None:
            _check_integer("max_extra_steps", self.max_extra_steps, 0, "a non-negative")
        for name in ["extend_tol", "max_bin_width"]:
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0:  # `not >=` also refuses NaN
                raise SeqdiffError(f"{name} must be a non-negative number, got {value!r}")
        for name, allowed in [
            ("schedule", SCHEDULES),
            ("tie_rates", TIE_RATES),
            ("loss_weighting", LOSS_WEIGHTINGS),
            ("precision", PRECISIONS),
            ("optimizer", OPTIMIZERS),
        ]:
            check_choice(name, getattr(self, name), allowed)
        if self.lr <= 0 or (self.max_minutes is not None and self.max_minutes <= 0):
            raise SeqdiffError("lr and max_minutes must be positive")
        if not 0 < self.validation_fraction < 1:
            raise SeqdiffError(
                f"validation_fraction must be between 0 and 1, got {self.validation_fraction!r}"
            )


def _check_integer(name: str, value: Any, least: int, what: str) -> None:
    if not isinstance(value, int | np.integer) or value < least:
        raise SeqdiffError(f"{name} must be {what} integer, got {value!r}")


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    """A one-line SeqdiffError unless `value` is one of `allowed`.

    Example:
        >>> check_choice("point", "mode", ("predictive", "draws"))
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: point must be one of predictive, draws, not 'mode'
    """
    if value not in allowed:
        raise SeqdiffError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def _flagged() -> list[Any]:
    return [f for f in fields(FitSettings) if "flag" in f.metadata]


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def add_fit_flags(parser: argparse.ArgumentParser, *, defaults: bool = False, prefix: str = "") -> None:
    """Add a flag per fit setting that has one. Without `defaults` a flag not given is None (the
    imputer's default applies); with it, the setting's default. `prefix` starts each help text."""
    for f in _flagged():
        parser.add_argument(
            f.metadata["flag"],
            default=f.default if defaults else None,
            help=prefix + f.metadata["help"].format(default=f.default),
            **f.metadata["argparse"],
        )


def fit_flags_given(args: argparse.Namespace) -> list[str]:
    """The fit-setting flags given on the command line (parsed without `add_fit_flags`' defaults)."""
    return [f.metadata["flag"] for f in _flagged() if getattr(args, _dest(f.metadata["flag"])) is not None]


def given_fit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Fit setting -> value, for the fit-setting flags with a value."""
    return {
        f.name: value for f in _flagged() if (value := getattr(args, _dest(f.metadata["flag"]))) is not None
    }
