"""Adapt a protein model to a family: fine-tune it on the family's homologs, cached by content.

The shipped model knows proteins in general; a family's homologs carry the signal a design needs to
be recognised as one of its members. ``adapt`` fine-tunes a base model on the homologs (unaligned
sequences; a few are held out and the weights that score them best are kept) and stores the result
in the user's cache (``$SEQDIFF_CACHE``, else ``$XDG_CACHE_HOME/seqdiff``, else ``~/.cache/seqdiff``),
under a key of the base model's weights, the homologs and the recipe: the same request later returns
the cached model at once. A cache entry appears whole (trained in a scratch folder, then renamed) or
not at all, so a killed adaptation leaves no half-written model behind.

Example:
    >>> key = adaptation_key(default_model_path(), ["MKTAYIAKQR", "MKTAYLAKQR"], AdaptRecipe())
    >>> len(key)
    16
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from seqdiff.atomic import atomic_folder
from seqdiff.cache import cache_root, file_digest
from seqdiff.errors import SeqdiffError
from seqdiff.protein.family_settings import AdaptRecipe
from seqdiff.protein.io import ProteinRecord, write_fasta
from seqdiff.protein.model import ProteinAdapter, default_model_path

ADAPTED = "adapted"  # the cache's folder of adapted models

FINISH_SECONDS = 10.0
"""Kept from the time cap for what follows training: the last validation and writing the model."""


@dataclass(frozen=True)
class AdaptedModel:
    """An adapted model folder, its cache key, and whether it came from the cache."""

    path: Path
    key: str
    reused: bool


def adaptation_key(base: Path, homologs: Sequence[str], recipe: AdaptRecipe) -> str:
    """16 hex digits naming (base model weights, homolog sequences in order, recipe)."""
    digest = hashlib.sha256()
    digest.update(file_digest(Path(base) / "model.safetensors").encode())
    digest.update(json.dumps(asdict(recipe), sort_keys=True).encode())
    for sequence in homologs:
        digest.update(sequence.encode() + b"\n")
    return digest.hexdigest()[:16]


def _training_set(homologs: Sequence[str], recipe: AdaptRecipe) -> list[str]:
    """The homologs to train on: exact duplicates dropped, at most ``max_homologs``, order kept."""
    kept = list(dict.fromkeys(s.upper() for s in homologs if s))[: recipe.max_homologs]
    if len(kept) < 2:
        raise SeqdiffError(f"homologs: {len(kept)} distinct sequence(s); adapting needs at least 2")
    return kept


def adapt(
    homologs: Sequence[str],
    base: str | Path | None = None,
    recipe: AdaptRecipe | None = None,
    cache: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    device: str = "auto",
) -> AdaptedModel:
    """The model ``base`` (default: the shipped one) fine-tuned on ``homologs``, from the cache if there.

    ``progress(step, steps)`` is called as training goes. Returns the cached folder, a model that
    `seqdiff.protein.model.load_protein_model` loads; its ``config.json`` records the adaptation.
    """
    from seqdiff.training.callbacks import StepProgress, TimeBudget
    from seqdiff.training.config import DataConfig, OptimConfig, TrainConfig, TrainerConfig
    from seqdiff.training.train import quiet_lightning, train

    started = time.perf_counter()
    recipe = recipe or AdaptRecipe()
    recipe.check()
    base_path = Path(base) if base else default_model_path()
    if not (base_path / "model.safetensors").is_file():
        raise SeqdiffError(f"{base_path}: not a seqdiff model (no model.safetensors)")
    sequences = _training_set(homologs, recipe)
    key = adaptation_key(base_path, sequences, recipe)
    root = Path(cache) if cache else cache_root()
    target = root / ADAPTED / key
    if (target / "config.json").is_file():
        return AdaptedModel(target, key, reused=True)
    with tempfile.TemporaryDirectory(prefix="seqdiff-adapt-") as scratch, atomic_folder(target) as entry:
        train_file = Path(scratch) / "homologs.fasta"
        write_fasta([ProteinRecord(f"h{i}", "", s) for i, s in enumerate(sequences)], train_file)
        # The cap is for the whole adaptation: what came before training and what follows it count.
        spent = time.perf_counter() - started + FINISH_SECONDS
        minutes = max(recipe.minutes - spent / 60, recipe.minutes / 2)
        cfg = TrainConfig(
            modality="protein",
            data=DataConfig(
                train=str(train_file),
                max_len=512,
                max_tokens=recipe.max_tokens,
                valid_fraction=max(recipe.held_out, min(0.25, 8 / len(sequences))),
            ),
            optim=OptimConfig(
                lr=recipe.lr,
                warmup_steps=max(1, recipe.steps // 10),
                total_steps=recipe.steps,
                ema_decay=0.99,
            ),
            trainer=TrainerConfig(
                max_steps=recipe.steps,
                max_minutes=minutes,
                val_every_steps=recipe.check_every,
                checkpoint_every_steps=recipe.steps + 1,
                accelerator="cpu" if device == "cpu" else "auto",
                progress_bar=False,
                seed=recipe.seed,
            ),
            out=str(Path(scratch) / "run"),
            init=str(base_path),
        )
        with quiet_lightning():
            budget = TimeBudget(minutes)  # the learning-rate decay ends when the time does
            folder = train(cfg, ProteinAdapter(), [StepProgress(on_step=progress), budget])
        config = json.loads((folder / "config.json").read_text())
        config["adaptation"] = {
            "key": key,
            "base": str(base_path),
            "homologs": len(sequences),
            "recipe": asdict(recipe),
        }
        (entry / "config.json").write_text(json.dumps(config, indent=1))
        shutil.move(folder / "model.safetensors", entry / "model.safetensors")
    return AdaptedModel(target, key, reused=False)
