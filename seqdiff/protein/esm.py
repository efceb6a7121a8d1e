"""ESM-2 inside seqdiff: its architecture as a denoiser, its weights as a start, its scores as a check.

DPLM (Wang et al., 2024) showed that a masked-diffusion protein model initialised from ESM-2 is far
better than one trained from scratch: ESM-2 already predicts masked residues over the same 33-token
alphabet, so MD4 / GenMD4 training only has to teach it high masking rates.

- ``ESMDenoiser`` puts fair-esm's ``ESM2`` behind the denoiser interface. A training config with
  ``model.architecture: esm2`` builds it from scratch; ``init_from`` copies a checkpoint's weights
  (``init_from_esm``).
- ``find_esm_checkpoint`` and ``load_esm_checkpoint`` read fair-esm ``.pt`` files without running
  code from them (fair-esm's own loader needs ``weights_only=False`` on torch >= 2.6 and a
  ``-contact-regression.pt`` file; we need neither). Nothing is ever downloaded.
- ``pseudo_perplexity``, ``score_table`` and ``rank_designs`` score sequences with ESM-2.

A released model is named as fair-esm names it (``load_esm_for_scoring("esm2_t6_8M_UR50D")``); the
example writes a tiny random one instead:

Example:
    >>> import argparse, tempfile
    >>> cfg = DenoiserConfig(vocab_size=33, dim=64, n_layers=2, n_heads=4, architecture="esm2")
    >>> path = Path(tempfile.mkdtemp()) / "esm2_tiny.pt"  # a random 2-layer ESM-2 as fair-esm saves one
    >>> args = argparse.Namespace(encoder_layers=2, encoder_embed_dim=64, encoder_attention_heads=4)
    >>> torch.save({"model": ESMDenoiser(cfg).esm.state_dict(), "cfg": {"model": args}}, path)
    >>> esm_model = load_esm_for_scoring(path)
    >>> pseudo_perplexity(esm_model, ["MKTAYIAKQRQISFVKSHFSRQ", "GSH"]).shape
    (2,)
"""

from __future__ import annotations

import argparse
import math
import pickle
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from esm.data import Alphabet
from esm.model.esm2 import ESM2
from torch import Tensor, nn

from seqdiff.core.denoiser import DenoiserConfig
from seqdiff.core.device import resolve_device
from seqdiff.errors import SeqdiffError
from seqdiff.protein import alphabet
from seqdiff.protein.design import Design, score_nelbo
from seqdiff.protein.io import read_sequences
from seqdiff.protein.model import load_protein_model
from seqdiff.training.config import ModelConfig

ESM_URL = "https://dl.fbaipublicfiles.com/fair-esm/models/{name}.pt"
ESM_MAX_LEN = 1022  # ESM-2's context of 1024 tokens, less <cls> and <eos>

# fair-esm's renaming of ESM-2 weights (esm.pretrained._load_model_and_alphabet_core_v2).
_OLD_PREFIX = re.compile(r"^(encoder\.sentence_encoder\.|encoder\.)")
_EMBED, _TIED = "esm.embed_tokens.weight", "esm.lm_head.weight"
_ARCH_KEYS = {"n_layers": "encoder_layers", "dim": "encoder_embed_dim", "n_heads": "encoder_attention_heads"}


class ESMDenoiser(nn.Module):
    """fair-esm's ESM-2 as a denoiser: unframed token ids [B, N] -> logits [B, N, 33].

    ``forward`` frames each sequence as ESM-2 expects (``<cls>`` residues ``<eos>``, then
    ``<pad>``, whose id is also ours) and strips the frame from the logits, so a padded batch
    gives the same logits as each sequence alone. Built from scratch it is initialised as
    Hugging Face's ESM is (normal, std 0.02): the output layer is the token embedding, and
    PyTorch's default N(0, 1) embedding would start far from uniform predictions.

    Token dropout is kept. ESM-2 was trained with it: a masked token is embedded as zero and the
    embeddings are scaled by (1 - 0.12) / (1 - masked fraction), so the pretrained weights expect
    it, and without it a model initialised from ESM-2 would not compute ESM-2's function. The
    masked fraction counts ``<cls>`` and ``<eos>``, so even a fully masked sequence (where
    sampling starts) stays finite; MD4 training adapts the model to the high masking rates.

    Example:
        >>> cfg = DenoiserConfig(vocab_size=33, dim=64, n_layers=2, n_heads=4, architecture="esm2")
        >>> ESMDenoiser(cfg)(torch.full((2, 7), alphabet.MASK_ID)).shape
        torch.Size([2, 7, 33])
    """

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        unsupported = [
            name
            for name, used in [
                ("time_conditioning", cfg.time_conditioning),
                ("an autoregressive (causal) model", cfg.causal),
                ("dropout", cfg.dropout > 0),
            ]
            if used
        ]
        if unsupported:
            raise SeqdiffError(f"model: the esm2 architecture does not support {', '.join(unsupported)}")
        if cfg.vocab_size != alphabet.VOCAB_SIZE:
            raise SeqdiffError(f"model: esm2 uses the {alphabet.VOCAB_SIZE}-token ESM alphabet")
        if cfg.dim % cfg.n_heads:
            raise SeqdiffError(f"model: dim {cfg.dim} is not a multiple of n_heads {cfg.n_heads}")
        self.cfg = cfg
        self.esm = ESM2(
            num_layers=cfg.n_layers,
            embed_dim=cfg.dim,
            attention_heads=cfg.n_heads,
            alphabet=Alphabet.from_architecture("ESM-1b"),
            token_dropout=True,
        )
        # No contact prediction: its regression weights are a separate file, and unused here.
        self.esm.contact_head = None
        for module in self.esm.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.esm.embed_tokens.weight[alphabet.PAD_ID].zero_()

    def forward(
        self,
        tokens: Tensor,
        valid: Tensor | None = None,
        t: Tensor | None = None,
        caches: list[dict] | None = None,
        offset: int = 0,
    ) -> Tensor:
        """Logits [B, N, 33]; ``valid`` marks real positions (right padding). ESM-2 has no time
        input, so ``t`` is ignored, and it is bidirectional: no incremental decoding."""
        if caches is not None or offset:
            raise ValueError("ESM-2 is bidirectional: it has no incremental decoding")
        b, n = tokens.shape
        if valid is None:
            valid = torch.ones_like(tokens, dtype=torch.bool)
        framed = tokens.new_full((b, n + 2), alphabet.PAD_ID)
        framed[:, 1:-1] = tokens.masked_fill(~valid, alphabet.PAD_ID)
        framed[:, 0] = alphabet.CLS_ID
        framed[torch.arange(b, device=tokens.device), valid.sum(-1) + 1] = alphabet.EOS_ID
        return self.esm(framed)["logits"][:, 1:-1]

    # ESM-2 ties its output layer to the token embedding. safetensors refuses tensors that share
    # memory, so the tied weight is saved once (as the embedding) and restored from it on load.
    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False) -> dict:
        state = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        del state[prefix + _TIED]
        return state

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        if prefix + _EMBED in state_dict:
            state_dict.setdefault(prefix + _TIED, state_dict[prefix + _EMBED])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def find_esm_checkpoint(name_or_path: str | Path) -> Path:
    """The fair-esm ``.pt`` file of a path, or of a model name in the torch hub cache.

    A name (``esm2_t6_8M_UR50D``) is looked up in ``torch.hub.get_dir()/checkpoints/``, where
    ``esm.pretrained`` downloads to; a missing path is looked up there too, by file name. Nothing
    is downloaded: a missing file is a one-line SeqdiffError naming where it looked and how to get it.

    Example (``find_esm_checkpoint("esm2_t6_8M_UR50D")`` is, once downloaded,
    ``~/.cache/torch/hub/checkpoints/esm2_t6_8M_UR50D.pt``):
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "esm2_t6_8M_UR50D.pt"
        >>> path.touch()
        >>> find_esm_checkpoint(path) == path
        True
        >>> find_esm_checkpoint("esm2_t0_none")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        seqdiff.errors.SeqdiffError: ESM-2 checkpoint 'esm2_t0_none' not found (looked for .../esm2_t0_none.pt); ...
    """
    given = Path(name_or_path).expanduser()
    name = given.name.removesuffix(".pt")
    cached = Path(torch.hub.get_dir()) / "checkpoints" / f"{name}.pt"
    is_name = given.suffix != ".pt" and len(given.parts) == 1
    tried = [cached] if is_name else list(dict.fromkeys([given, cached]))
    for path in tried:
        if path.is_file():
            return path
    raise SeqdiffError(
        f"ESM-2 checkpoint {str(name_or_path)!r} not found (looked for {', '.join(map(str, tried))}); "
        f"download {ESM_URL.format(name=name)} to {cached}, or run "
        f'python -c "import esm; esm.pretrained.{name}()" on a machine with network and copy that file'
    )


def load_esm_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, int]]:
    """The ESM-2 weights (fair-esm's ``ESM2`` names) and architecture of a fair-esm ``.pt`` file.

    Read with ``weights_only=True``: only tensors, plain containers and ``argparse.Namespace``
    (where fair-esm keeps the training arguments) are unpickled, never code. The architecture
    (``n_layers``, ``dim``, ``n_heads``) comes from ``cfg["model"]`` or, in older files, ``args``.
    Contact-regression weights are dropped.

    Example (``esm2_t6_8M_UR50D.pt`` gives ``{'n_layers': 6, 'dim': 320, 'n_heads': 20}``):
        >>> import argparse, tempfile
        >>> cfg = DenoiserConfig(vocab_size=33, dim=64, n_layers=2, n_heads=4, architecture="esm2")
        >>> path = Path(tempfile.mkdtemp()) / "esm2_tiny.pt"  # a random 2-layer ESM-2 as fair-esm saves one
        >>> args = argparse.Namespace(encoder_layers=2, encoder_embed_dim=64, encoder_attention_heads=4)
        >>> torch.save({"model": ESMDenoiser(cfg).esm.state_dict(), "cfg": {"model": args}}, path)
        >>> state, arch = load_esm_checkpoint(path)
        >>> arch
        {'n_layers': 2, 'dim': 64, 'n_heads': 4}
    """
    path = Path(path)
    torch.serialization.add_safe_globals([argparse.Namespace])
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        what = found.group(1) if found else _first_line(err)
        raise SeqdiffError(
            f"{path}: refusing to load: it contains {what}, not only tensors and argparse.Namespace"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise SeqdiffError(f"{path}: not a readable PyTorch checkpoint ({_first_line(err)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise SeqdiffError(f"{path}: not a fair-esm checkpoint (no 'model' weights)")
    cfg = data.get("cfg")
    args = cfg.get("model") if isinstance(cfg, dict) and cfg.get("model") is not None else data.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else args
    if not isinstance(args, dict) or any(key not in args for key in _ARCH_KEYS.values()):
        raise SeqdiffError(f"{path}: not an ESM-2 checkpoint (no encoder_layers/embed_dim/attention_heads)")
    if not args.get("token_dropout", True):
        raise SeqdiffError(f"{path}: ESM-2 without token dropout is not supported")
    arch = {ours: int(args[theirs]) for ours, theirs in _ARCH_KEYS.items()}
    state = {_OLD_PREFIX.sub("", k): v for k, v in data["model"].items()}
    return {k: v for k, v in state.items() if not k.startswith("contact_head.")}, arch


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _denoiser_weights(state: dict[str, Tensor], cfg: DenoiserConfig, source: Path) -> dict[str, Tensor]:
    """``state`` (fair-esm names) as ``ESMDenoiser`` weights, checked against ``cfg``'s shapes."""
    with torch.device("meta"):
        expected = {k: v.shape for k, v in ESMDenoiser(cfg).state_dict().items()}
    weights = {f"esm.{k}": v for k, v in state.items() if f"esm.{k}" != _TIED}
    missing, unexpected = sorted(expected.keys() - weights.keys()), sorted(weights.keys() - expected.keys())
    wrong = [k for k in expected.keys() & weights.keys() if weights[k].shape != expected[k]]
    if missing or unexpected or wrong:
        problems = [
            f"{what} {', '.join(k.removeprefix('esm.') for k in keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for what, keys in [("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)]
            if keys
        ]
        raise SeqdiffError(f"{source}: not an ESM-2 of this size: {'; '.join(problems)}")
    return weights


def init_from_esm(model: ModelConfig, name_or_path: str | Path) -> tuple[ModelConfig, dict[str, Tensor]]:
    """Start training from ESM-2: ``model`` with the checkpoint's architecture, and the denoiser
    weights to load into the model built from it (``model.denoiser.load_state_dict``).

    The checkpoint decides ``architecture`` (esm2), ``n_layers``, ``dim`` and ``n_heads``; the rest
    of ``model`` (schedule, timesteps, kind) is kept.

    Example (a released model by name: ``init_from_esm(ModelConfig(), "esm2_t6_8M_UR50D")``):
        >>> from seqdiff.core.bundle import build_model
        >>> from seqdiff.protein.model import protein_spec
        >>> import argparse, tempfile
        >>> cfg = DenoiserConfig(vocab_size=33, dim=64, n_layers=2, n_heads=4, architecture="esm2")
        >>> path = Path(tempfile.mkdtemp()) / "esm2_tiny.pt"  # a random 2-layer ESM-2 as fair-esm saves one
        >>> args = argparse.Namespace(encoder_layers=2, encoder_embed_dim=64, encoder_attention_heads=4)
        >>> torch.save({"model": ESMDenoiser(cfg).esm.state_dict(), "cfg": {"model": args}}, path)
        >>> model_cfg, weights = init_from_esm(ModelConfig(), path)
        >>> model_cfg.architecture, model_cfg.n_layers, model_cfg.dim
        ('esm2', 2, 64)
        >>> build_model(protein_spec(model_cfg)).denoiser.load_state_dict(weights)
        <All keys matched successfully>
    """
    path = find_esm_checkpoint(name_or_path)
    state, arch = load_esm_checkpoint(path)
    model = replace(model, architecture="esm2", **arch)
    cfg = DenoiserConfig(vocab_size=alphabet.VOCAB_SIZE, architecture="esm2", **arch)
    return model, _denoiser_weights(state, cfg, path)


def load_esm_for_scoring(name_or_path: str | Path, device: str | torch.device = "cpu") -> ESMDenoiser:
    """An ESM-2 checkpoint (a path or a model name, see ``find_esm_checkpoint``) in eval mode.

    ``load_esm_for_scoring("esm2_t6_8M_UR50D", "cuda")`` loads a released model onto the GPU; the
    module's example loads a tiny one.
    """
    path = find_esm_checkpoint(name_or_path)
    state, arch = load_esm_checkpoint(path)
    cfg = DenoiserConfig(vocab_size=alphabet.VOCAB_SIZE, max_len=ESM_MAX_LEN, architecture="esm2", **arch)
    weights = _denoiser_weights(state, cfg, path)
    model = ESMDenoiser(cfg)
    model.load_state_dict(weights)
    return model.to(device).eval()


@torch.no_grad()
def pseudo_perplexity(esm_model: ESMDenoiser, sequences: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """ESM pseudo-perplexity of each sequence: exp of the mean over positions i of -log p(x_i | x
    with position i masked), the softmax over ESM's whole vocabulary as ESM's own scripts do.

    All L masked copies of a sequence are built and run ``batch_size`` copies at a time.

    Example (an untrained ESM-2 is about uniform over its 33 tokens: a pseudo-perplexity near 33):
        >>> cfg = DenoiserConfig(vocab_size=33, dim=64, n_layers=2, n_heads=4, architecture="esm2")
        >>> pppl = pseudo_perplexity(ESMDenoiser(cfg).eval(), ["MKTAYIAKQR", "GSH"])
        >>> pppl.shape, bool(((pppl > 20) & (pppl < 50)).all())
        ((2,), True)
    """
    if batch_size < 1:
        raise SeqdiffError("batch size must be at least 1")
    device = next(esm_model.parameters()).device
    out = np.full(len(sequences), np.nan)
    for i, seq in enumerate(sequences):
        x = torch.tensor(alphabet.encode(seq, record=f"#{i + 1}"), device=device)
        if (x == alphabet.MASK_ID).any():
            raise SeqdiffError(
                f"sequence #{i + 1}: '_' marks a position to design: only whole sequences score"
            )
        log_p = torch.empty(len(x), device=device)
        for start in range(0, len(x), batch_size):
            pos = torch.arange(start, min(start + batch_size, len(x)), device=device)
            rows = torch.arange(len(pos), device=device)
            copies = x.repeat(len(pos), 1)
            copies[rows, pos] = alphabet.MASK_ID
            logits = esm_model(copies)[rows, pos].float()
            log_p[pos] = torch.log_softmax(logits, dim=-1)[rows, x[pos]]
        if len(x):
            out[i] = math.exp(-log_p.mean().item())
    return out


def score_table(
    path: str | Path,
    esm: str | Path | None = None,
    checkpoint: str | Path | None = None,
    passes: int = 8,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "auto",
) -> pd.DataFrame:
    """One row per sequence of a FASTA / A3M file: our model's NELBO per residue (nats, ``score_nelbo``,
    over standard residues) and, with ``esm``, ESM-2's pseudo-perplexity (over all residues), side
    by side.

    Columns: id, length, nelbo_per_residue, [esm_pppl,] sequence.

    Example (with ``esm="esm2_t6_8M_UR50D"`` the column ``esm_pppl`` comes before ``sequence``):
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "designs.fasta"
        >>> _ = path.write_text(">d1\\nMKTAYIAKQR\\n>d2\\nGSHXMLE\\n")
        >>> table = score_table(path, passes=2, device="cpu")
        >>> table.columns.tolist(), table["length"].tolist()
        (['id', 'length', 'nelbo_per_residue', 'sequence'], [10, 7])
    """
    if passes < 1:
        raise SeqdiffError("--passes must be at least 1")
    records = read_sequences(path)
    if not records:
        raise SeqdiffError(f"{path}: no sequences")
    for record in records:
        if "_" in record.sequence:
            raise SeqdiffError(
                f"{path}: record {record.id!r}: '_' marks a position to design: nothing to score"
            )
    dev = resolve_device(device)
    # ESM first: a missing checkpoint should fail before the slower NELBO passes.
    esm_model = load_esm_for_scoring(esm, dev) if esm else None
    model, _ = load_protein_model(checkpoint, dev)
    sequences = [r.sequence for r in records]
    # As in training and evaluation, non-standard residues (X, B, ...) are missing data: masked and
    # left out of the NELBO, which would otherwise be infinite (the model never outputs them).
    standard = set(alphabet.STANDARD_AA)
    observed = ["".join(c if c in standard else "_" for c in s) for s in sequences]
    table = pd.DataFrame(
        {
            "id": [r.id for r in records],
            "length": [len(s) for s in sequences],
            "nelbo_per_residue": score_nelbo(model, observed, passes=passes, seed=seed),
        }
    )
    if esm_model is not None:
        table["esm_pppl"] = pseudo_perplexity(esm_model, sequences, batch_size)
    table["sequence"] = sequences
    return table


def rank_designs(
    designs: list[Design], by: str, esm: str | Path | None = None, batch_size: int = 32, device: str = "auto"
) -> list[Design]:
    """``designs`` best first: by our NELBO per residue (``by="nelbo"``) or by ESM-2 pseudo-perplexity
    (``by="esm"``, ``esm`` a checkpoint path or name), lower first.

    Ranking by ESM stores the score in each design's ``params`` (so in its FASTA header) as
    ``esm_pppl``.

    Example (``rank_designs(designs, "esm", "esm2_t6_8M_UR50D")`` ranks by ESM-2, and the best
    design's header then carries e.g. ``esm_pppl=9.8132``):
        >>> from seqdiff.protein.design import design, plan_from_records
        >>> from seqdiff.protein.io import ProteinRecord
        >>> designs = design(plan_from_records([ProteinRecord("x", "", "MKT___LLV")], n=3), steps=5)
        >>> scores = [d.nelbo_per_residue for d in rank_designs(designs, "nelbo")]
        >>> scores == sorted(scores)
        True
    """
    if by == "nelbo":
        return sorted(designs, key=lambda d: d.nelbo_per_residue)
    if by != "esm":
        raise SeqdiffError(f"--rank-by {by!r}: choose nelbo or esm")
    if not esm:
        raise SeqdiffError("--rank-by esm needs --esm: an ESM-2 checkpoint file or model name")
    pppl = pseudo_perplexity(
        load_esm_for_scoring(esm, resolve_device(device)), [d.sequence for d in designs], batch_size
    )
    for d, value in zip(designs, pppl, strict=True):
        # design() gives all its designs one shared params dict: each gets its own copy.
        d.params = {**d.params, "esm_pppl": f"{value:.4f}"}
    return [designs[i] for i in np.argsort(pppl, kind="stable")]
