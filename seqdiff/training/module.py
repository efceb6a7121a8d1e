"""The Lightning module that trains any ``MaskedDiffusion`` model (proteins and tables alike).

AdamW (or Muon for the blocks' matrices: `seqdiff.training.optim`) with linear warmup and cosine
decay, gradient clipping (set on the Trainer), an EMA of the weights that is used for validation and
for the saved model, bf16 autocast on GPU (the Trainer's ``precision``). Batches are ``(x, valid)``
pairs of token ids and a non-padding mask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import lightning as L
import torch
from torch import Tensor

from seqdiff.core.bundle import ModelSpec, build_model
from seqdiff.training.lr_schedule import warmup_cosine
from seqdiff.training.optim import build_optimizer, check_optimizer


@dataclass
class OptimConfig:
    """Optimiser settings (MD4 / MDLM defaults scaled to small models).

    Example:
        >>> OptimConfig(lr=1e-3).warmup_steps
        500
    """

    lr: float = 1e-3
    weight_decay: float = 0.03
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 500
    total_steps: int = 10_000
    min_lr_ratio: float = 0.1
    ema_decay: float = 0.999
    restart_ratio: float = 0.0  # past total_steps (training extended): see warmup_cosine
    optimizer: str = "adamw"  # or "muon": Muon for the blocks' matrices (seqdiff.training.optim)

    def __post_init__(self) -> None:
        check_optimizer(self.optimizer)  # a config's typo is one line before any work


class DiffusionModule(L.LightningModule):
    """Trains a masked-diffusion model; ``self.ema`` holds the weights that get saved.

    Example:
        >>> from seqdiff.core.denoiser import DenoiserConfig
        >>> spec = ModelSpec(DenoiserConfig(vocab_size=5, dim=32, n_layers=1, n_heads=2),
        ...                  mask_id=4, allowed=[0, 1, 2, 3])
        >>> module = DiffusionModule(spec.to_dict(), asdict(OptimConfig()))
        >>> int(module.tokens_seen), any(p.requires_grad for p in module.ema.parameters())  # EMA: no gradients
        (0, False)
    """

    def __init__(self, spec: dict, optim: dict, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.spec = ModelSpec.from_dict(spec)
        self.optim = OptimConfig(**optim)
        self.model = build_model(self.spec)
        self.ema = build_model(self.spec)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.register_buffer("tokens_seen", torch.zeros((), dtype=torch.long))
        self.seed = seed
        self._noise: torch.Generator | None = None
        self._noise_state: Tensor | None = None

    def noise(self, device: torch.device) -> torch.Generator:
        """The generator of the training noise (t and masks), separate from the global RNG so that
        nothing else (data loaders, init) shifts it, and saved in checkpoints for exact resume."""
        if self._noise is None:
            self._noise = torch.Generator(device=device).manual_seed(self.seed + self.global_rank)
            if self._noise_state is not None:
                self._noise.set_state(self._noise_state)
        return self._noise

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        # (x, valid), or (x, valid, within) for a model with ordered positions (table rows)
        x, valid, *within = batch
        out = self.model.losses(
            x, valid, generator=self.noise(x.device), within=within[0] if within else None
        )
        tokens = out.tokens.sum().clamp(min=1)
        self.tokens_seen += tokens.long()
        if self.logs_this_step():
            self.log("train/nelbo", out.nelbo.sum() / tokens, prog_bar=True, batch_size=x.shape[0])
            self.log("train/tokens", tokens, reduce_fx="sum", batch_size=x.shape[0])
        return out.objective / tokens

    def logs_this_step(self) -> bool:
        """Whether this training step logs its metrics: the steps the loggers write (every
        ``log_every_n_steps``) and the run's last possible step (its loss is read back from
        ``callback_metrics``).
        ``self.log`` costs a good part of a small table model's step, so the other steps skip it."""
        step, trainer = self.global_step + 1, self.trainer
        return step % trainer.log_every_n_steps == 0 or step == trainer.max_steps

    def optimizer_step(self, *args, **kwargs) -> None:
        # The EMA follows each optimizer step here, before any callback (a checkpoint) runs.
        super().optimizer_step(*args, **kwargs)
        decay = min(self.optim.ema_decay, (1 + self.global_step) / (10 + self.global_step))
        with torch.no_grad():  # one fused call, not one per parameter tensor
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1 - decay)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, valid = batch
        # A fixed generator per batch: validation NELBO is comparable across epochs.
        generator = torch.Generator(device=x.device).manual_seed(batch_idx)
        out = self.ema.losses(x, valid, generator=generator)
        self._val_sums += torch.stack([out.nelbo.sum(), out.tokens.sum()])

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(2, device=self.device)

    def on_validation_epoch_end(self) -> None:
        sums = self.all_gather(self._val_sums)
        sums = sums.reshape(-1, 2).sum(0)
        nelbo = sums[0] / sums[1].clamp(min=1)
        self.log("val/nelbo", nelbo, prog_bar=True, rank_zero_only=True)
        self.log("val/ppl", nelbo.exp(), rank_zero_only=True)

    # Exact resume: the training noise continues where it stopped (Lightning saves no RNG state).
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self._noise is not None:
            checkpoint["noise_rng"] = self._noise.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._noise_state = checkpoint.get("noise_rng")
        self._noise = None

    def configure_optimizers(self):
        o = self.optim
        opt = build_optimizer(self.model, o.optimizer, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda step: warmup_cosine(step, o.warmup_steps, o.total_steps, o.min_lr_ratio, o.restart_ratio),
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def optim_dict(self) -> dict:
        return asdict(self.optim)
