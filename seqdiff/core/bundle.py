"""A model as data: a JSON-able spec, and a bundle on disk (safetensors + config.json).

A bundle is a folder with ``model.safetensors`` (weights, never a pickle) and ``config.json``
(the spec plus what an adapter needs: the protein alphabet name, a table's encoder state, the
model card's numbers). Loading never executes code from the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from seqdiff.atomic import atomic_path
from seqdiff.core.autoregressive import AutoregressiveLM
from seqdiff.core.denoiser import Denoiser, DenoiserConfig
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.core.schedules import make_schedule
from seqdiff.errors import SeqdiffError

WEIGHTS, CONFIG = "model.safetensors", "config.json"


@dataclass
class ModelSpec:
    """Everything needed to rebuild a ``MaskedDiffusion`` except its weights.

    ``allowed`` is a list of allowed token ids (the same at every position), or one such list
    per position (table columns). ``groups`` ties GenMD4 rates (token id -> rate group).

    Example:
        >>> spec = ModelSpec(DenoiserConfig(vocab_size=5, dim=32, n_layers=1, n_heads=2),
        ...                  mask_id=4, allowed=[0, 1, 2, 3])
        >>> build_model(spec).mask_id
        4
    """

    denoiser: DenoiserConfig
    mask_id: int
    allowed: list
    schedule: str = "linear"
    schedule_kwargs: dict = field(default_factory=dict)
    groups: list[int] | None = None
    timesteps: int = 0
    weighting: str = "elbo"  # the training objective: "elbo" or "uniform" (MaskedDiffusion)
    kind: str = "diffusion"  # or "autoregressive" (the baseline; then bos_id is its start token)
    bos_id: int | None = None
    ordered: list[bool] | None = None  # per position: ordered bins of a number (MaskedDiffusion)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["denoiser"] = self.denoiser.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        d = dict(d)
        d["denoiser"] = DenoiserConfig(**d["denoiser"])
        return cls(**d)

    def allowed_mask(self) -> torch.Tensor:
        """Bool [V] or [N, V] from the id lists."""
        vocab = self.denoiser.vocab_size
        if self.allowed and isinstance(self.allowed[0], list):
            mask = torch.zeros(len(self.allowed), vocab, dtype=torch.bool)
            for row, ids in enumerate(self.allowed):
                mask[row, ids] = True
            return mask
        mask = torch.zeros(vocab, dtype=torch.bool)
        mask[self.allowed] = True
        return mask


# Denoiser architectures by name (``DenoiserConfig.architecture``). The core knows its own transformer;
# adapters register theirs (the protein adapter adds "esm2") so the core never imports them.
DENOISERS: dict[str, Callable[[DenoiserConfig], nn.Module]] = {"seqdiff": Denoiser}


def register_denoiser(name: str, factory: Callable[[DenoiserConfig], nn.Module]) -> None:
    """Make ``architecture=name`` build its denoiser with ``factory(cfg)``."""
    DENOISERS[name] = factory


def make_denoiser(cfg: DenoiserConfig) -> nn.Module:
    """A freshly initialised denoiser of ``cfg.architecture``, from the registered factories.

    Example:
        >>> make_denoiser(DenoiserConfig(vocab_size=5, dim=32, n_layers=1, n_heads=2)).cfg.architecture
        'seqdiff'
    """
    factory = DENOISERS.get(cfg.architecture)
    if factory is None:
        known = ", ".join(sorted(DENOISERS))
        raise SeqdiffError(f"unknown model architecture {cfg.architecture!r} ({known})")
    return factory(cfg)


def build_model(spec: ModelSpec) -> MaskedDiffusion | AutoregressiveLM:
    """A freshly initialised model for ``spec``."""
    if spec.kind == "autoregressive":
        return AutoregressiveLM(make_denoiser(spec.denoiser), spec.bos_id, spec.mask_id, spec.allowed_mask())
    groups = torch.tensor(spec.groups) if spec.groups is not None else None
    schedule = make_schedule(spec.schedule, spec.denoiser.vocab_size, groups=groups, **spec.schedule_kwargs)
    return MaskedDiffusion(
        make_denoiser(spec.denoiser),
        schedule,
        spec.mask_id,
        spec.allowed_mask(),
        timesteps=spec.timesteps,
        weighting=spec.weighting,
        ordered=None if spec.ordered is None else torch.tensor(spec.ordered),
    )


def check_model_folder(folder: str | Path) -> Path:
    """`folder` as a Path, or a one-line SeqdiffError when a model cannot be saved there: it is a file,
    or below one, or its nearest existing folder is not writable. Called before the work that makes
    the model, so that none is lost.

    Example:
        >>> check_model_folder("/dev/null/model")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: /dev/null/model: cannot save a model there: /dev/null is not a folder
    """
    folder = Path(folder)
    existing = next((p for p in [folder, *folder.absolute().parents] if p.exists()), Path("/"))
    if not existing.is_dir():
        raise SeqdiffError(f"{folder}: cannot save a model there: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SeqdiffError(f"{folder}: cannot save a model there: {existing} is not writable")
    return folder


def save_bundle(
    folder: str | Path, model: MaskedDiffusion, spec: ModelSpec, extra: dict | None = None
) -> Path:
    """Save weights and config to ``folder`` (created); each file appears atomically.

    Example:
        >>> import tempfile
        >>> spec = ModelSpec(DenoiserConfig(vocab_size=5, dim=32, n_layers=1, n_heads=2),
        ...                  mask_id=4, allowed=[0, 1, 2, 3])
        >>> folder = save_bundle(Path(tempfile.mkdtemp()) / "my-model", build_model(spec), spec, {"note": "toy"})
        >>> sorted(p.name for p in folder.iterdir())
        ['config.json', 'model.safetensors']
        >>> load_bundle(folder)[2]
        {'note': 'toy'}
    """
    folder = Path(folder)  # checked before the work by its callers (`check_model_folder`)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = {"spec": spec.to_dict(), **(extra or {})}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / WEIGHTS) as tmp:
            save_file(tensors, tmp)
        with atomic_path(folder / CONFIG) as tmp:
            tmp.write_text(json.dumps(config, indent=1))
    except OSError as err:
        raise SeqdiffError(f"{folder}: cannot save the model ({err.strerror or err})") from err
    return folder


def load_bundle(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[MaskedDiffusion, ModelSpec, dict]:
    """Load a bundle saved by ``save_bundle``: (model in eval mode, spec, the rest of config.json).

    Example:
        >>> from seqdiff.protein.model import default_model_path
        >>> model, spec, extra = load_bundle(default_model_path())
        >>> model.training, spec.denoiser.vocab_size, extra["modality"]
        (False, 33, 'protein')
    """
    folder = Path(folder)
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise SeqdiffError(f"{folder}: not a seqdiff model (expected {CONFIG} and {WEIGHTS} in that folder)")
    try:
        config = json.loads((folder / CONFIG).read_text())
        spec = ModelSpec.from_dict(config.pop("spec"))
        model = build_model(spec)
        model.load_state_dict(load_file(folder / WEIGHTS))
    # SafetensorError (a corrupt or truncated weights file) derives from Exception only.
    except (ValueError, KeyError, TypeError, RuntimeError, OSError, SafetensorError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SeqdiffError(f"{folder}: cannot load model: {first}") from None
    return model.to(device).eval(), spec, config
