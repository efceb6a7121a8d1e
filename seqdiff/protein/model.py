"""Proteins as an adapter over the engine: the model spec, the training data, the default model.

Tokens use the ESM-1b 33-token alphabet (ESM-2 weights share it). The model may output only
the 20 standard amino acids. Ambiguous or rare letters in training data (X, B, Z, U, O) are
treated as missing: masked as input and left out of the loss and of every NELBO we report.

Importing this module registers ESM-2 as a denoiser architecture of the core ("esm2"): every protein
model is built or loaded through it. fair-esm itself is imported only when such a model is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from seqdiff.atomic import atomic_folder
from seqdiff.cache import cache_root, file_digest
from seqdiff.core.bundle import ModelSpec, build_model, load_bundle, register_denoiser, save_bundle
from seqdiff.core.denoiser import DenoiserConfig
from seqdiff.core.diffusion import MaskedDiffusion, learned_rates
from seqdiff.core.evaluation import evaluate_nelbo
from seqdiff.errors import SeqdiffError
from seqdiff.protein import alphabet
from seqdiff.protein.io import iter_sequences
from seqdiff.training.config import ModelConfig
from seqdiff.training.data import BucketBatchSampler, CroppedSequences
from seqdiff.training.shards import TokenShard

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "protein-default"


def _esm_denoiser(cfg: DenoiserConfig):
    from seqdiff.protein.esm import ESMDenoiser

    return ESMDenoiser(cfg)


register_denoiser("esm2", _esm_denoiser)


def default_model_path() -> Path:
    """The shipped default protein model (inside the package).

    Example:
        >>> default_model_path().name
        'protein-default'
    """
    return DEFAULT_MODEL


def designable_ids() -> list[int]:
    """Token ids of the 20 standard amino acids: the only values the model outputs."""
    return [i for i in range(alphabet.VOCAB_SIZE) if bool(alphabet.DESIGNABLE[i])]


def tokens_for_training(sequence: str, record: str = "?", source: str = "?") -> np.ndarray:
    """Encode a sequence; non-standard residues become the mask id (missing data).

    Example:
        >>> tokens_for_training("MKX").tolist()[-1] == alphabet.MASK_ID
        True
    """
    ids = np.asarray(alphabet.encode(sequence, record=record, source=source), dtype=np.int64)
    standard = np.asarray(alphabet.DESIGNABLE, dtype=bool)[ids]
    return np.where(standard, ids, alphabet.MASK_ID)


class ProteinAdapter:
    """The protein side of the training loop (see ``seqdiff.training.train.Adapter``).

    Example:
        >>> ProteinAdapter().pad_id == alphabet.PAD_ID
        True
    """

    modality = "protein"
    pad_id = alphabet.PAD_ID

    def sequences(self, path: str) -> list[np.ndarray]:
        seqs = [tokens_for_training(r.sequence, r.id, str(path)) for r in iter_sequences(path)]
        if not seqs:
            raise SeqdiffError(f"{path}: no sequences")
        return seqs

    def spec(self, model: ModelConfig, max_len: int) -> ModelSpec:
        return protein_spec(model, max_len)

    def shard(self, paths: Sequence[str | Path]) -> TokenShard:
        """The sequences of ``paths`` (FASTA, gzipped or not), tokenised as for training, as one
        shard to save once and train from (``data.train``: its folder).

        Example:
            >>> import tempfile
            >>> folder = Path(tempfile.mkdtemp())
            >>> _ = (folder / "train.fasta").write_text(">a\\nMKTAYIAKQR\\n>b\\nGSHXMLE\\n")
            >>> shard = ProteinAdapter().shard([folder / "train.fasta"])
            >>> TokenShard.load(shard.save(folder / "prepared" / "train")).lengths.tolist()
            [10, 7]
        """
        seqs = [s for path in paths for s in self.sequences(str(path))]
        return TokenShard.from_sequences(seqs, {**self.bundle_extra(), "sources": [str(p) for p in paths]})

    def bundle_extra(self) -> dict:
        return {"modality": "protein", "alphabet": "ESM-1b"}

    def resolve_init(self, init: str) -> Path:
        """'default' is the shipped model; anything else a model folder."""
        return DEFAULT_MODEL if init == "default" else Path(init)

    def pretrained(self, model: ModelConfig, source: str) -> tuple[ModelConfig, dict]:
        """ESM-2 weights (a fair-esm .pt file or a name in the torch hub cache) as the denoiser."""
        from seqdiff.protein.esm import init_from_esm

        return init_from_esm(model, source)


def protein_spec(model: ModelConfig, max_len: int = 1024) -> ModelSpec:
    """The model spec of a protein denoiser over the ESM-1b alphabet.

    Example:
        >>> protein_spec(ModelConfig(dim=64, n_layers=2, n_heads=4)).mask_id == alphabet.MASK_ID
        True
    """
    cfg = DenoiserConfig(
        vocab_size=alphabet.VOCAB_SIZE,
        dim=model.dim,
        n_layers=model.n_layers,
        n_heads=model.n_heads,
        mlp_ratio=model.mlp_ratio,
        max_len=max_len,
        positions="rope",
        time_conditioning=model.time_conditioning,
        dropout=model.dropout,
        causal=model.kind == "autoregressive",
        architecture=model.architecture,
    )
    return ModelSpec(
        denoiser=cfg,
        mask_id=alphabet.MASK_ID,
        allowed=designable_ids(),
        schedule=model.schedule,
        timesteps=model.timesteps,
        weighting=model.weighting,
        kind=model.kind,
        bos_id=alphabet.CLS_ID,
    )


def resolve_checkpoint(checkpoint: str | Path | None) -> Path:
    """The model folder a ``--checkpoint`` names: None is the shipped model, a folder is itself, and an
    ESM-2 checkpoint (a fair-esm ``.pt`` path, or a name in the torch hub cache such as
    ``esm2_t6_8M_UR50D``) becomes a seqdiff model with ESM-2 as its denoiser, converted once into the
    cache (`esm_design_model`).

    Example:
        >>> resolve_checkpoint(None).name
        'protein-default'
    """
    if not checkpoint:
        return DEFAULT_MODEL
    path = Path(checkpoint)
    if path.is_dir() or not (path.suffix == ".pt" or path.name.startswith("esm")):
        return path
    return esm_design_model(checkpoint)


def esm_design_model(name_or_path: str | Path) -> Path:
    """ESM-2 as a masked-diffusion denoiser: a model folder in the cache, keyed by the checkpoint's bytes.

    ESM-2 predicts masked residues from the rest, which is what the denoiser does at every noise level;
    its logits over the ESM-1b alphabet are limited to the 20 amino acids like any protein model here.
    """
    from seqdiff.protein.esm import ESM_MAX_LEN, find_esm_checkpoint, init_from_esm

    source = find_esm_checkpoint(name_or_path)
    target = cache_root() / "esm" / f"{source.stem}-{file_digest(source)[:12]}"
    if (target / "config.json").is_file():
        return target
    model_cfg, weights = init_from_esm(ModelConfig(), source)
    spec = protein_spec(model_cfg, max_len=ESM_MAX_LEN)
    model = build_model(spec)
    model.denoiser.load_state_dict(weights)
    with atomic_folder(target) as folder:
        save_bundle(folder, model, spec, {**ProteinAdapter().bundle_extra(), "esm2": source.stem})
    return target


def load_protein_model(
    checkpoint: str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[MaskedDiffusion, dict]:
    """Load a protein model (the shipped default when ``checkpoint`` is None; see `resolve_checkpoint`).

    Example:
        >>> model, info = load_protein_model()
        >>> info["modality"]
        'protein'
    """
    path = resolve_checkpoint(checkpoint)
    model, _, extra = load_bundle(path, device)
    if extra.get("modality") != "protein":
        raise SeqdiffError(f"{path}: not a protein model (modality: {extra.get('modality')!r})")
    return model, extra


def evaluate_file(
    model: MaskedDiffusion,
    path: str | Path,
    passes: int = 4,
    limit: int | None = None,
    max_tokens: int = 8192,
    seed: int = 0,
) -> dict:
    """NELBO (nats and bits per residue), perplexity and its Monte-Carlo standard error on a file.

    Sequences longer than the model's maximum length are cut to it (counted in the report);
    non-standard residues are left out of the count, as in training.

    Example (X is non-standard: 16 of the 17 residues count):
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "test.fasta"
        >>> _ = path.write_text(">a\\nMKTAYIAKQR\\n>b\\nGSHXMLE\\n")
        >>> model, _ = load_protein_model()
        >>> report = evaluate_file(model, path, passes=2)
        >>> report["sequences"], report["tokens"], report["passes"], report["perplexity"] > 1
        (2, 16, 2, True)
    """
    seqs = ProteinAdapter().sequences(str(path))[:limit]
    max_len = model.denoiser.cfg.max_len
    truncated = sum(len(s) > max_len for s in seqs)
    data = CroppedSequences(seqs, max_len, alphabet.PAD_ID, random_crop=False)
    device = next(model.parameters()).device
    batches = []
    for item in BucketBatchSampler(data.lengths, max_tokens, shuffle=False):
        x, valid = data[item]
        batches.append((x.to(device), valid.to(device)))
    report = evaluate_nelbo(model, batches, passes=passes, seed=seed).to_dict()
    return {**report, "truncated_sequences": truncated, "input": str(path)}


def amino_acid_rates(model: MaskedDiffusion) -> list[tuple[str, float]]:
    """A GenMD4 protein model's learned rate per amino acid, largest (decided first) first.

    Example (an untrained model: every rate is still its initial 1.0):
        >>> model = build_model(protein_spec(ModelConfig(dim=32, n_layers=1, n_heads=2, schedule="genmd4")))
        >>> rates = amino_acid_rates(model)
        >>> len(rates), rates[0]
        (20, ('L', 1.0))
    """
    return learned_rates(model, {i: alphabet.TOKENS[i] for i in designable_ids()})
