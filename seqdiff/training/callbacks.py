"""Lightning callbacks for `DiffusionModule` training runs: a progress bar, a time budget, early stopping.

Each reads the module's planned schedule length, ``module.optim.total_steps`` (the learning-rate
schedule's end, which `TimeBudget` may move earlier), and is independent of the data's modality.

Example:
    >>> progress = StepProgress(on_step=lambda done, total: None)
    >>> budget = TimeBudget(minutes=5)
    >>> stopping = EarlyStopping(lambda model: 0.0, patience=3, every=50)
    >>> stopping.history
    []
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from tqdm.auto import tqdm

from seqdiff.training.lr_schedule import extension_round

TIME_CHECK_EVERY = 20  # steps between two re-estimates of what fits in a time budget


class StepProgress(L.Callback):
    """A tqdm bar (stderr) over training steps, showing the training NELBO, and an optional
    ``on_step(done, total)`` called after every step (e.g. an app's progress bar).

    ``bar``: True shows the bar, False hides it, None shows it only when stderr is a terminal;
    ``label`` is its description. ``total`` is the planned steps, or the steps so far once training
    goes past them (`EarlyStopping`'s extension rounds).
    """

    def __init__(
        self,
        on_step: Callable[[int, int], None] | None = None,
        bar: bool | None = False,
        label: str = "training",
    ):
        self.on_step, self.show, self.label = on_step, bar, label
        self.bar: Any = None

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        disable = None if self.show is None else not self.show
        self.bar = tqdm(total=module.optim.total_steps, desc=self.label, unit="step", disable=disable)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        total = max(module.optim.total_steps, trainer.global_step)
        self.bar.total = total
        self.bar.update(1)
        if self.on_step is not None:
            self.on_step(trainer.global_step, total)
        # The loss is new only on the steps the module logs (`logs_this_step`), and each read of
        # callback_metrics recomputes them: read it then alone.
        if trainer.global_step % trainer.log_every_n_steps == 0:
            nelbo = trainer.callback_metrics.get("train/nelbo")
            if nelbo is not None:
                self.bar.set_postfix(nelbo=f"{float(nelbo):.3f}")

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.bar.close()


class TimeBudget(L.Callback):
    """With a time limit of ``minutes``, end the cosine learning-rate decay when the time runs out,
    not at ``max_steps`` (None: the schedule's length when training starts).

    Every TIME_CHECK_EVERY steps the schedule's ``total_steps`` (read by `DiffusionModule`'s LR lambda
    at each step) becomes the steps that still fit in the budget at the average speed so far, capped at
    ``max_steps``. Stopping at the limit is the Trainer's ``max_time`` (`TrainerConfig.max_minutes`).
    """

    def __init__(self, minutes: float, max_steps: int | None = None):
        self.seconds, self.max_steps = 60 * minutes, max_steps
        self.start = 0.0

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.start = time.perf_counter()
        if self.max_steps is None:
            self.max_steps = module.optim.total_steps

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if (
            step % TIME_CHECK_EVERY or step >= module.optim.total_steps
        ):  # past it, extension rounds keep their end
            return
        elapsed = time.perf_counter() - self.start
        fits = step + int((self.seconds - elapsed) * step / elapsed)
        module.optim.total_steps = max(step + 1, min(self.max_steps, fits))


def round_end(step: int, schedule_steps: int) -> bool:
    """Whether ``step`` ends the learning-rate schedule or a round of training past it.

    Example:
        >>> [s for s in (100, 150, 200, 300) if round_end(s, 200)]
        [200, 300]
    """
    return step >= schedule_steps and (step - schedule_steps) % extension_round(schedule_steps) == 0


class EarlyStopping(L.Callback):
    """Every ``every`` steps, ``score`` the EMA model (lower is better, e.g. a held-out NLL) in the
    training precision (bf16 autocast where training used it). After ``patience`` checks without
    improvement training stops; at the end the EMA weights of the best check are restored, and
    ``history`` holds every (step, score).

    Once the learning-rate schedule has ended (``module.optim.total_steps``), training goes on in
    rounds of `extension_round` steps (each a warm restart of the rate, `warmup_cosine`) while the
    best score fell by more than ``extend_tol`` (relative) over the last quarter of the schedule's
    steps, when the schedule and each round end; the Trainer's max_steps caps the rounds (equal to the
    schedule's length: no rounds).
    """

    def __init__(
        self,
        score: Callable[[torch.nn.Module], float],
        patience: int,
        every: int = 100,
        extend_tol: float = 0.0,
    ):
        self.score, self.patience, self.every, self.extend_tol = score, patience, every, extend_tol
        self.history: list[tuple[int, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None

    @property
    def best(self) -> tuple[int, float]:
        """(step, score) of the best check."""
        return min(self.history, key=lambda item: item[1])

    def still_improving(self, step: int, window: int) -> bool:
        """Whether the best score fell by more than extend_tol over the last ``window`` steps."""
        before = [score for at, score in self.history if at <= step - window]
        return bool(before) and self.best[1] < min(before) * (1 - self.extend_tol)

    def check(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        step = trainer.global_step
        if self.history and self.history[-1][0] == step:
            return
        with torch.no_grad(), trainer.precision_plugin.forward_context():  # bf16 where training used it
            score = self.score(module.ema)
        if not self.history or score < self.best[1]:
            self.best_state = {k: v.detach().clone() for k, v in module.ema.state_dict().items()}
        self.history.append((step, score))
        stalled = step - self.best[0] >= self.patience * self.every
        planned = module.optim.total_steps
        window = max(self.every, planned // 4)
        if stalled or (round_end(step, planned) and not self.still_improving(step, window)):
            trainer.should_stop = True

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step % self.every == 0 or round_end(step, module.optim.total_steps):
            self.check(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.check(trainer, module)
        if self.best_state is not None:
            module.ema.load_state_dict(self.best_state)
