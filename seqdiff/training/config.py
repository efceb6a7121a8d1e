"""Training configuration: a YAML file mapped onto small dataclasses, with dotted overrides.

Example YAML (see ``pipelines/configs/protein_default.yaml``)::

    modality: protein
    data: {train: ../shared/data/protein/general/cath_v4_1_0_S40.train.fasta, max_len: 512}
    model: {dim: 320, n_layers: 6, n_heads: 20, schedule: linear}
    optim: {lr: 1.0e-3, warmup_steps: 500, total_steps: 20000}
    trainer: {max_steps: 20000, max_minutes: 100}
    out: runs/protein-default
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from seqdiff.errors import SeqdiffError
from seqdiff.training.module import OptimConfig


def _typed(name: str, value: object, annotation: str) -> object:
    """``value`` as the number a numeric field declares. YAML reads ``5e-4`` (no dot) as a string,
    so a number written that way is converted; anything else that is not a number is an error."""
    kinds = set(annotation.replace(" ", "").split("|"))
    numeric = kinds & {"int", "float"} and "str" not in kinds
    if not numeric or isinstance(value, bool) or (value is None and "None" in kinds):
        return value
    expected = "a number or null" if "None" in kinds else "a number"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise SeqdiffError(f"config: {name} must be {expected}, got {value!r}") from None
    if not isinstance(value, int | float):
        raise SeqdiffError(f"config: {name} must be {expected}, got {value!r}")
    if "float" not in kinds:
        if value != int(value):
            raise SeqdiffError(f"config: {name} must be a whole number, got {value!r}")
        return int(value)
    return value


@dataclass
class DataConfig:
    train: str = ""
    valid: str | None = None
    max_len: int = 512
    max_tokens: int = 8192
    valid_fraction: float = 0.05
    num_workers: int = 0


@dataclass
class ModelConfig:
    dim: int = 320
    n_layers: int = 6
    n_heads: int = 20
    mlp_ratio: float = 8 / 3
    dropout: float = 0.0
    time_conditioning: bool = False
    schedule: str = "linear"  # linear | cosine | polynomial | geometric | genmd4
    tie_rates: str = "value"  # genmd4: one rate per token value, or "column" (tables)
    timesteps: int = 0  # 0: continuous-time NELBO
    weighting: str = "elbo"  # training objective: the NELBO, or "uniform" (mean CE over masked tokens)
    kind: str = "diffusion"  # or "autoregressive": the same-size left-to-right baseline
    architecture: str = "seqdiff"  # or "esm2": fair-esm's ESM-2 of n_layers x dim, n_heads (MLP 4 x dim)


@dataclass
class TrainerConfig:
    max_steps: int = 10_000
    max_minutes: float | None = None
    val_every_steps: int = 500
    checkpoint_every_steps: int = 500
    log_every_steps: int = 10
    gradient_clip: float = 1.0
    precision: str = "auto"  # auto: bf16-mixed where native (GPU, AVX512-BF16 / AMX CPU), else 32-true
    compile: bool = False  # torch.compile the denoiser (the first steps pay for compilation)
    accelerator: str = "auto"
    devices: str | int = "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | fsdp
    threads: int | None = None  # CPU threads; None: the cores the machine has free (seqdiff.threads)
    seed: int = 0
    progress_bar: bool = True


@dataclass
class TrainConfig:
    """The whole run. ``init`` fine-tunes from a model bundle ('default' or a path); ``init_from``
    starts from ESM-2 weights (a fair-esm ``.pt`` file, or a model name found in the torch hub
    cache), whose architecture then replaces model.architecture, n_layers, dim and n_heads.

    Example:
        >>> TrainConfig.from_dict({"modality": "protein", "model": {"dim": 64}}).model.dim
        64
    """

    modality: str = "protein"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    out: str = "runs/train"
    init: str | None = None
    init_from: str | None = None
    resume: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        sections = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "trainer": TrainerConfig}
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise SeqdiffError(f"config: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        kwargs = {}
        for key, value in d.items():
            if key in sections:
                section = sections[key]
                names = {f.name for f in fields(section)}
                bad = set(value or {}) - names
                if bad:
                    raise SeqdiffError(
                        f"config: unknown keys in {key}: {sorted(bad)}; known: {sorted(names)}"
                    )
                types = {f.name: f.type for f in fields(section)}
                value = section(**{k: _typed(f"{key}.{k}", v, types[k]) for k, v in (value or {}).items()})
                if key == "optim":
                    value.betas = tuple(value.betas)
            kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
        """Read a YAML file (or start from defaults) and apply ``key.sub=value`` overrides."""
        d: dict = {}
        if path is not None:
            try:
                d = yaml.safe_load(Path(path).read_text()) or {}
            except (OSError, yaml.YAMLError) as err:
                raise SeqdiffError(f"{path}: cannot read config: {str(err).splitlines()[0]}") from None
            if not isinstance(d, dict):
                raise SeqdiffError(f"{path}: a config must be a YAML mapping")
        for item in overrides:
            if "=" not in item:
                raise SeqdiffError(f"override {item!r}: expected key=value, e.g. trainer.max_steps=100")
            key, raw = item.split("=", 1)
            node = d
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = yaml.safe_load(raw)
        return cls.from_dict(d)

    def to_dict(self) -> dict:
        return asdict(self)
