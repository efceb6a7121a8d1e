"""Run a training job from a ``TrainConfig``: data, model, Trainer, checkpoints, export.

The modality adapter supplies the token arrays (or ``data.train`` / ``data.valid`` name shard
folders it prepared: ``seqdiff.training.shards``), the padding id and the model spec; everything else
is shared. (Table models are fitted by `seqdiff.tabular.imputer.MaskedDiffusionImputer` with the same
module and `seqdiff.training.callbacks`.) Outputs in ``cfg.out``:

- ``checkpoints/last.ckpt`` (and every N steps): full Lightning state for an exact resume;
- ``model/``: the EMA weights as a bundle (safetensors + config.json), rewritten whenever the
  validation NELBO improves (early stopping keeps the best);
- ``logs/``: CSV (and TensorBoard when installed) metrics.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from seqdiff.atomic import atomic_path
from seqdiff.core.bundle import ModelSpec, check_model_folder, load_bundle, save_bundle
from seqdiff.core.device import native_bf16
from seqdiff.errors import SeqdiffError
from seqdiff.threads import set_threads
from seqdiff.training.config import ModelConfig, TrainConfig, TrainerConfig
from seqdiff.training.data import SequenceDataModule
from seqdiff.training.module import DiffusionModule
from seqdiff.training.shards import TokenShard, is_shard


class Adapter(Protocol):
    """What a modality provides to the shared training loop."""

    modality: str
    pad_id: int

    def sequences(self, path: str) -> list[np.ndarray]: ...

    def spec(self, model: ModelConfig, max_len: int) -> ModelSpec: ...

    def bundle_extra(self) -> dict: ...

    def resolve_init(self, init: str) -> Path:
        """The model folder that ``init`` names (a folder, or a name such as 'default')."""
        ...

    def pretrained(self, model: ModelConfig, source: str) -> tuple[ModelConfig, dict]:
        """``model`` reshaped to a pretrained network's size, and that network's weights (``init_from``)."""
        ...


class ExportBest(Callback):
    """Save the EMA weights as a bundle whenever the validation NELBO improves."""

    def __init__(self, folder: Path, adapter: Adapter, cfg: TrainConfig, previous: dict | None = None):
        self.folder, self.adapter, self.cfg = folder, adapter, cfg
        self.previous = previous  # the training record of the model this run starts from (--init)
        self.best = math.inf
        self.start = time.time()

    def on_validation_end(self, trainer: L.Trainer, module: DiffusionModule) -> None:
        nelbo = trainer.callback_metrics.get("val/nelbo")
        if nelbo is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        nelbo = float(nelbo)
        if nelbo < self.best:
            self.best = nelbo
            extra = {
                **self.adapter.bundle_extra(),
                "training": {
                    "step": trainer.global_step,
                    "tokens_seen": int(module.tokens_seen),
                    "valid_nelbo_nats": nelbo,
                    "valid_perplexity": math.exp(nelbo),
                    "wall_minutes_this_run": (time.time() - self.start) / 60,
                    "accelerator": trainer.strategy.root_device.type,
                    "devices": trainer.num_devices,
                    "init": self.cfg.init,
                    "config": self.cfg.to_dict(),
                    **({"previous": self.previous} if self.previous else {}),
                },
            }
            save_bundle(self.folder, module.ema, module.spec, extra)


def training_history(training: dict) -> list[dict]:
    """The runs that made a model, oldest first: a bundle's ``training`` record followed back through
    the ``previous`` records of the models it was initialised from (``--init``). Steps and tokens of
    a run are its own (``tokens_seen`` counts from zero in each run).

    Example:
        >>> runs = training_history({"step": 50, "previous": {"step": 100}})
        >>> [r["step"] for r in runs], sum(r["step"] for r in runs)
        ([100, 50], 150)
    """
    runs = []
    record: dict | None = training
    while record:
        runs.append({k: v for k, v in record.items() if k != "previous"})
        record = record.get("previous")
    return runs[::-1]


def read_split(path: str, adapter: Adapter) -> TokenShard:
    """A split's token sequences: a prepared shard folder (``seqdiff prepare``), memory-mapped, or
    a data file that ``adapter`` tokenises."""
    if not is_shard(path):
        return TokenShard.from_sequences(adapter.sequences(path))
    shard = TokenShard.load(path)
    if shard.meta.get("modality") != adapter.modality:
        raise SeqdiffError(
            f"{path}: a shard of {shard.meta.get('modality')!r} data, not {adapter.modality!r}"
        )
    return shard


def train(cfg: TrainConfig, adapter: Adapter, callbacks: Sequence[Callback] = ()) -> Path:
    """Train and return the folder of the exported (best EMA) model bundle; ``callbacks`` join the
    run's own (checkpoints, export), e.g. `seqdiff.training.callbacks.StepProgress`."""
    out = check_model_folder(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SeqdiffError(f"{out}: cannot make the output folder ({err.strerror or err})") from err
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    set_threads(cfg.trainer.threads)  # None: the cores the machine has free
    if not cfg.data.train:
        raise SeqdiffError("config: data.train is required")
    if cfg.init and cfg.init_from:
        raise SeqdiffError("config: give init (a seqdiff model) or init_from (ESM-2 weights), not both")
    data = SequenceDataModule(
        read_split(cfg.data.train, adapter),
        read_split(cfg.data.valid, adapter) if cfg.data.valid else None,
        pad_id=adapter.pad_id,
        max_len=cfg.data.max_len,
        max_tokens=cfg.data.max_tokens,
        valid_fraction=cfg.data.valid_fraction,
        seed=cfg.trainer.seed,
        num_workers=cfg.data.num_workers,
    )
    init_state = denoiser_state = previous = None
    if cfg.init:
        init_model, spec, init_extra = load_bundle(adapter.resolve_init(cfg.init))
        init_state = init_model.state_dict()
        previous = init_extra.get("training")
    else:
        if cfg.init_from:
            model_cfg, denoiser_state = adapter.pretrained(cfg.model, cfg.init_from)
            cfg = replace(cfg, model=model_cfg)
        spec = adapter.spec(cfg.model, cfg.data.max_len)
    module = DiffusionModule(spec.to_dict(), cfg.to_dict()["optim"], seed=cfg.trainer.seed)
    if init_state is not None:
        module.model.load_state_dict(init_state)
        module.ema.load_state_dict(init_state)
    if denoiser_state is not None:
        module.model.denoiser.load_state_dict(denoiser_state)
        module.ema.load_state_dict(module.model.state_dict())
    if cfg.trainer.compile:
        # In place (nn.Module.compile): the parameter names, hence checkpoints and bundles, are unchanged.
        # Every position computed: packing the scored ones has a data-dependent shape (a graph break).
        module.model.skip_unscored = False
        module.model.denoiser.compile()

    loggers = [L.pytorch.loggers.CSVLogger(out, name="logs")]
    try:
        import tensorboard  # noqa: F401

        loggers.append(L.pytorch.loggers.TensorBoardLogger(out, name="tb"))
    except ImportError:
        pass
    ckpt_dir = out / "checkpoints"
    callbacks = [
        *callbacks,
        ModelCheckpoint(
            dirpath=ckpt_dir,
            every_n_train_steps=cfg.trainer.checkpoint_every_steps,
            save_last=True,
            save_top_k=1,
        ),
        ExportBest(out / "model", adapter, cfg, previous),
    ]
    last = ckpt_dir / "last.ckpt"
    resume = str(last) if cfg.resume and last.exists() else None
    trainer = fit_module(module, data, cfg.trainer, logger=loggers, callbacks=callbacks, ckpt_path=resume)
    # A final validation so the last steps can also be exported if they are the best.
    trainer.validate(module, datamodule=data, verbose=False)
    if trainer.world_size > 1:
        check_replicas_in_sync(trainer, module, out / "replicas.json")
    return out / "model"


def check_replicas_in_sync(trainer: L.Trainer, module: DiffusionModule, report: Path) -> None:
    """After data-parallel training every rank must hold the same weights: record a checksum
    per rank, and fail loudly if they differ."""
    with torch.no_grad():
        flat = torch.cat([p.detach().double().flatten() for p in module.model.parameters()])
        position = torch.arange(1, flat.numel() + 1, dtype=torch.float64, device=flat.device)
        checksum = torch.stack([flat.sum(), (flat * position).sum() / flat.numel()])
    sums = trainer.strategy.all_gather(checksum).reshape(-1, 2).cpu().tolist()
    if trainer.is_global_zero:
        with atomic_path(report) as tmp:
            tmp.write_text(json.dumps({"world_size": trainer.world_size, "checksums": sums}, indent=1))
    if any(s != sums[0] for s in sums):
        raise SeqdiffError(f"data-parallel replicas diverged: parameter checksums {sums}")


def fit_module(
    module: DiffusionModule,
    data: L.LightningDataModule,
    cfg: TrainerConfig,
    *,
    logger: list | bool = False,
    callbacks: Sequence[Callback] = (),
    ckpt_path: str | None = None,
    validate: bool = True,
) -> L.Trainer:
    """Fit ``module`` on ``data`` with a Lightning Trainer set up from ``cfg``; returns the Trainer.

    Precision ``auto`` is bf16-mixed where bf16 matmuls are native (a GPU, a CPU with AVX512-BF16 or
    AMX; `seqdiff.core.device.native_bf16`) and fp32 elsewhere. Checkpoints are written only by the
    ``ModelCheckpoint`` callbacks given (no implicit one), logs only by ``logger``. With
    ``validate=False`` no validation runs (the data module's validation split may be empty).
    """
    gpu = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16-mixed" if native_bf16(torch.device("cuda" if gpu else "cpu")) else "32-true"
    trainer = L.Trainer(
        max_steps=cfg.max_steps,
        max_time={"minutes": cfg.max_minutes} if cfg.max_minutes else None,
        val_check_interval=cfg.val_every_steps,
        check_val_every_n_epoch=None,
        limit_val_batches=None if validate else 0,
        num_sanity_val_steps=0,
        precision=precision,
        gradient_clip_val=cfg.gradient_clip,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        logger=logger,
        callbacks=list(callbacks),
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        log_every_n_steps=cfg.log_every_steps,
        use_distributed_sampler=False,
    )
    # Resuming reads our own checkpoint as plain tensors and containers, never arbitrary objects.
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    return trainer


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's start-up banner and its hints about data loaders, for a library call whose
    own progress bar and log messages are all the user should see.

    Example:
        >>> with quiet_lightning():
        ...     logging.getLogger("lightning.pytorch").level
        30
    """
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
