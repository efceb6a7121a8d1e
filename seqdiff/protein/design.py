"""Protein design with fixed positions: the one code path behind ``seqdiff design`` and the app.

A design job is a template: a sequence with ``_`` at the positions to design and residues
elsewhere (kept byte-identical). Templates come from fixed ranges (``--fix 10-25``), their
inverse (``--redesign 30-40``), ``_`` in the input (ESM3's convention), or an RFdiffusion contig
(a layout sampled per design). ``design`` fills the blanks with the masked-diffusion sampler and
scores each design.

Example:
    >>> jobs = plan_from_records([ProteinRecord("x", "", "MKTAYIAKQR")], fix="1-3", n=2)
    >>> jobs[0].template
    'MKT_______'
    >>> designs = design(jobs, steps=10, seed=0)
    >>> [d.sequence[:3] for d in designs], [len(d.sequence) for d in designs]
    (['MKT', 'MKT'], [10, 10])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqdiff.atomic import atomic_path
from seqdiff.core.batch import pad_batch
from seqdiff.core.device import resolve_device
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.core.noise import KeyedNoise, keyed_seed
from seqdiff.core.sampler_settings import DEFAULT_SETTINGS, SamplerSettings, flag
from seqdiff.core.sampling import sample
from seqdiff.errors import SeqdiffError
from seqdiff.protein import alphabet
from seqdiff.protein.contig import load_motif_source, parse_contig, resolve_contig, sample_layout
from seqdiff.protein.io import ProteinRecord
from seqdiff.protein.model import load_protein_model, tokens_for_training
from seqdiff.protein.positions import format_ranges, parse_ranges, ranges_to_mask


@dataclass(frozen=True)
class DesignJob:
    """One design to make: ``template`` has ``_`` at designed positions."""

    source: str
    index: int
    template: str
    motifs: tuple[tuple[str, int], ...] = ()
    contig: str | None = None

    @property
    def fixed(self) -> np.ndarray:
        return np.frombuffer(self.template.encode(), dtype=np.uint8) != ord("_")


@dataclass
class Design:
    """A designed sequence with its scores and per-position record.

    ``confidence``/``entropy``/``unmask_step`` are per position (NaN / -1 where fixed). ``params`` are
    the settings that made it, ``scores`` what was measured of it afterwards (e.g. its family scores),
    the first as header text.
    """

    job: DesignJob
    sequence: str
    nelbo_per_residue: float
    mean_confidence: float
    confidence: np.ndarray
    entropy: np.ndarray
    unmask_step: np.ndarray
    params: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.job.source}_design{self.job.index}"

    def header(self) -> str:
        """FASTA description: source, index, fixed positions, scores, every sampling parameter."""
        fixed = self.job.fixed
        ranges = _mask_to_ranges(fixed)
        parts = {
            "source": self.job.source,
            "index": self.job.index,
            "length": len(self.sequence),
            "fixed": format_ranges(ranges) if ranges else "none",
            "nelbo": f"{self.nelbo_per_residue:.4f}",
            "confidence": f"{self.mean_confidence:.4f}",
        }
        if self.job.contig:
            parts["contig"] = self.job.contig
            parts["motifs"] = ";".join(f"{name}@{start + 1}" for name, start in self.job.motifs)
        parts.update(self.params)
        parts.update({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in self.scores.items()})
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def to_record(self) -> ProteinRecord:
        return ProteinRecord(self.name, self.header(), self.sequence)

    def per_position(self) -> pd.DataFrame:
        """One row per position: residue, fixed, probability of the residue, entropy, step."""
        fixed = self.job.fixed
        return pd.DataFrame(
            {
                "design": self.name,
                "source": self.job.source,
                "index": self.job.index,
                "position": np.arange(1, len(self.sequence) + 1),
                "residue": list(self.sequence),
                "fixed": fixed,
                "probability": self.confidence,
                "entropy": self.entropy,
                "unmask_step": self.unmask_step,
                **self.scores,
            }
        )


def _mask_to_ranges(mask: np.ndarray) -> list[tuple[int, int]]:
    """1-based inclusive runs of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a) + 1, int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def template_for(sequence: str, fix: str | None = None, redesign: str | None = None) -> str:
    """The template of one input: ``fix`` keeps those ranges, ``redesign`` blanks them.

    Example:
        >>> template_for("MKTAYIAK", fix="2-3")
        '_KT_____'
        >>> template_for("MKTAYIAK", redesign="2-3")
        'M__AYIAK'
    """
    if fix and redesign:
        raise SeqdiffError("give --fix or --redesign, not both")
    if not fix and not redesign:
        if "_" not in sequence:
            raise SeqdiffError("nothing to design: give --fix, --redesign, or mark positions with '_'")
        return sequence
    keep = ranges_to_mask(parse_ranges(fix or redesign, len(sequence)), len(sequence))
    if redesign:
        keep = ~keep
    return "".join(c if k else "_" for c, k in zip(sequence, keep, strict=True))


def plan_from_records(
    records: list[ProteinRecord], fix: str | None = None, redesign: str | None = None, n: int = 1
) -> list[DesignJob]:
    """``n`` design jobs per input record."""
    jobs = []
    for record in records:
        try:
            template = template_for(record.sequence, fix, redesign)
        except SeqdiffError as err:
            raise SeqdiffError(f"record {record.id!r}: {err}") from None
        jobs.extend(DesignJob(record.id, i, template) for i in range(n))
    return jobs


def plan_from_contig(
    contig: str,
    motif_source: str,
    length_range: tuple[int, int] | None = None,
    n: int = 1,
    seed: int = 0,
    numbering: str = "pdb",
    source_name: str | None = None,
) -> list[DesignJob]:
    """``n`` motif-scaffolding jobs; each samples its own segment lengths (RFdiffusion style).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "motif.fasta"
        >>> _ = path.write_text(">A\\nADQLTEEQIAEFKEAFSLFDKDGDG\\n")
        >>> jobs = plan_from_contig("5-10,A16-19,5-10", path, (20, 22), n=3)
        >>> [job.contig for job in jobs]
        ['10,A16-19,8', '8,A16-19,9', '10,A16-19,7']
        >>> jobs[0].template, jobs[0].motifs
        ('__________FSLF________', (('A16-19', 10),))
    """
    segments = parse_contig(contig)
    source = load_motif_source(motif_source)
    pieces = resolve_contig(segments, source, numbering=numbering)
    rng = np.random.default_rng(seed)
    name = source_name or str(motif_source).rsplit("/", 1)[-1].split(".")[0]
    jobs = []
    for i in range(n):
        layout = sample_layout(segments, [p.sequence for p in pieces], length_range, rng)
        jobs.append(DesignJob(name, i, layout.template, layout.motifs, layout.contig))
    return jobs


@torch.no_grad()
def score_nelbo(
    model: MaskedDiffusion, sequences: list[str], passes: int = 8, seed: int = 0, first_key: int = 0
) -> np.ndarray:
    """The model's NELBO per residue (nats) of each sequence, averaged over ``passes`` MC draws.

    Sequence i is scored on its own, its passes one batch with stratified times, drawn from a generator
    seeded by (seed, ``first_key + i``): a score does not depend on the other sequences, so a slice of a
    list scored with its offset as ``first_key`` gets the scores of the whole list.

    Example:
        >>> model, _ = load_protein_model(None, "cpu")  # the shipped model
        >>> scores = score_nelbo(model, ["MKTAYIAKQR", "MKTAYIAKQRQISFVKSHFSRQ"], passes=2)
        >>> scores.shape, bool((scores > 0).all())
        ((2,), True)
    """
    device = next(model.parameters()).device
    out = np.zeros(len(sequences))
    for i, sequence in enumerate(sequences):
        generator = torch.Generator(device=device).manual_seed(keyed_seed(seed, first_key + i))
        # Non-standard residues (X, B, Z, U, O) are missing data, as in training and eval.
        x = torch.as_tensor(tokens_for_training(sequence), device=device).repeat(passes, 1)
        losses = model.losses(x, generator=generator)
        out[i] = float((losses.nelbo / losses.tokens.clamp(min=1)).mean())
    return out


def check_sampling(settings: SamplerSettings) -> None:
    """Refuse sampler settings that cannot work, before any model is loaded, naming the flag at fault.

    Example:
        >>> check_sampling(SamplerSettings(steps=0))
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: --steps must be at least 1
    """
    problem = settings.problem()
    if problem is not None:
        name, reason = problem
        raise SeqdiffError(f"{flag(name)} {reason}")


def design(
    jobs: list[DesignJob],
    model: MaskedDiffusion | None = None,
    checkpoint: str | None = None,
    steps: int = DEFAULT_SETTINGS.steps,
    grid: str = DEFAULT_SETTINGS.grid,
    temperature: float = DEFAULT_SETTINGS.temperature,
    top_p: float = DEFAULT_SETTINGS.top_p,
    seed: int = 0,
    batch_size: int = 16,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    first_job: int = 0,
    decoding: str = DEFAULT_SETTINGS.decoding,
    order_noise: float = DEFAULT_SETTINGS.order_noise,
    remask_eta: float = DEFAULT_SETTINGS.remask_eta,
    prior: Callable[[DesignJob], np.ndarray] | None = None,
) -> list[Design]:
    """Fill the ``_`` of every job's template; fixed residues are never changed.

    Jobs are sampled ``batch_size`` at a time with noise keyed by (seed, job number), job i being
    number ``first_job + i``; the NELBO scores are keyed the same way. The same jobs and seed give the
    same designs whatever the batch size, and a slice of a job list designed with its offset as
    ``first_job`` (as the Ray engine does) gets the designs of the whole list.
    ``progress(done, total)`` is called after every sampler step (total = batches x steps). The sampler
    settings (``seqdiff.core.sampler_settings.SamplerSettings``) that shape the draws go into every header.
    ``prior(job)`` [len(template), vocabulary], e.g. a family's `ProfileGuide`, is added to the model's
    log-probabilities at every step (``log_prior`` of `seqdiff.core.sampling.sample`).

    Example:
        >>> jobs = plan_from_records([ProteinRecord("x", "", "MKT___LLV")], n=4)
        >>> [d.sequence[:3] for d in design(jobs, steps=20, seed=1)]
        ['MKT', 'MKT', 'MKT', 'MKT']
    """
    if batch_size < 1:
        raise SeqdiffError(f"--batch-size must be at least 1, got {batch_size}")
    if not jobs:
        return []
    settings = SamplerSettings(steps, grid, temperature, top_p, decoding, order_noise, remask_eta)
    check_sampling(settings)
    dev = resolve_device(device)
    if model is None:
        model, _ = load_protein_model(checkpoint, dev)
    model = model.to(dev).eval()
    max_len = model.denoiser.cfg.max_len
    for job in jobs:
        if len(job.template) > max_len:
            raise SeqdiffError(
                f"record {job.source!r}: length {len(job.template)} exceeds the model's maximum of {max_len}"
            )
    params = {"seed": seed, **settings.in_use(), "model": checkpoint or "default"}
    n_batches = (len(jobs) + batch_size - 1) // batch_size
    designs: list[Design] = []
    for b in range(n_batches):
        chunk = jobs[b * batch_size : (b + 1) * batch_size]
        z, valid = pad_batch([torch.tensor(alphabet.encode(j.template)) for j in chunk], alphabet.PAD_ID)
        z, valid = z.to(dev), valid.to(dev)
        log_prior = None
        if prior is not None:
            log_prior = torch.zeros((*z.shape, alphabet.VOCAB_SIZE))
            for row, job in enumerate(chunk):
                log_prior[row, : len(job.template)] = torch.from_numpy(prior(job))
            log_prior = log_prior.to(dev)

        def on_step(i: int, total: int, b: int = b) -> None:
            if progress is not None:
                progress(b * steps + i, n_batches * steps)

        result = sample(
            model, z, valid, **asdict(settings),
            noise=KeyedNoise(seed, first_job + torch.arange(b * batch_size, b * batch_size + len(chunk))),
            on_step=on_step, log_prior=log_prior,
        )  # fmt: skip
        for row, job in enumerate(chunk):
            n = len(job.template)
            seq = alphabet.decode(result.tokens[row, :n].cpu())
            confidence = result.confidence[row, :n].cpu().numpy().astype(np.float64)
            designed = ~job.fixed
            designs.append(
                Design(
                    job=job,
                    sequence=seq,
                    nelbo_per_residue=float("nan"),
                    mean_confidence=float(np.nanmean(confidence[designed]))
                    if designed.any()
                    else float("nan"),
                    confidence=confidence,
                    entropy=result.entropy[row, :n].cpu().numpy().astype(np.float64),
                    unmask_step=result.unmask_step[row, :n].cpu().numpy(),
                    params=params,
                )
            )
    nelbo = score_nelbo(model, [d.sequence for d in designs], seed=seed, first_key=first_job)
    for d, value in zip(designs, nelbo, strict=True):
        d.nelbo_per_residue = float(value)
    return designs


def write_per_position(designs: list[Design], path: str | Path) -> None:
    """One Parquet row per design and position (``Design.per_position``), written atomically.

    Example:
        >>> import tempfile
        >>> designs = design(plan_from_records([ProteinRecord("x", "", "MKT___LLV")], n=2), steps=5)
        >>> path = Path(tempfile.mkdtemp()) / "per_position.parquet"
        >>> write_per_position(designs, path)
        >>> table = pd.read_parquet(path)
        >>> len(table), list(table.columns[:5])
        (18, ['design', 'source', 'index', 'position', 'residue'])
    """
    table = pd.concat([d.per_position() for d in designs], ignore_index=True)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
