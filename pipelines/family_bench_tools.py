"""What the two family benchmarks (`bench_motif`, `bench_family`) share: the sampler and adaptation
flags as the CLI declares them, the family path of ``seqdiff design --homologs`` timed, the scores of
a set of designs against a family profile, and writing results.

The goals of issue #25 are stated for the MSAs with at least :data:`MIN_HOMOLOGS` sequences:
:data:`GOALS` holds their thresholds, so that the tables show them next to what was measured.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np

from pipelines.protein_metrics import mean_pairwise_identity
from seqdiff.atomic import atomic_path
from seqdiff.cli.protein import add_adaptation_flags
from seqdiff.core.sampler_settings import SamplerSettings, flag
from seqdiff.protein.design import Design, DesignJob, design
from seqdiff.protein.family import FamilyProfile
from seqdiff.protein.family_design import Family, prepare_family
from seqdiff.protein.family_settings import DEFAULT_WEIGHT, AdaptRecipe
from seqdiff.protein.profile_guide import ProfileGuide

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "protein"
MSAS = DATA / "family" / "evodiff_scaffold_msas"
MIN_HOMOLOGS = 100

# (name, comparison, threshold, what it is), for the family-adapted system.
GOALS = [
    ("scaffold_recognised", ">=", 0.8, "scaffold-only recognition (fraction of designs)"),
    ("diversity_identity", "<=", 0.5, "mean pairwise identity among designs"),
    ("nearest_identity_mean", "<=", 0.8, "mean highest identity to a homolog"),
    ("adapt_seconds", "<=", 300.0, "adaptation wall seconds (slowest fresh adaptation)"),
    ("second_run_seconds", "<=", 10.0, "second run: seconds to the first design step (slowest)"),
]


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """The sampler settings (as ``seqdiff design`` declares them, same defaults), the adaptation flags
    of ``seqdiff design --homologs``, and the run's model, device, threads, seed and batch size."""
    for setting in fields(SamplerSettings):
        p.add_argument(
            flag(setting.name),
            type=type(setting.default),
            default=setting.default,
            choices=setting.metadata["choices"],
            help=f"{setting.metadata['help']} (default %(default)s)",
        )
    add_adaptation_flags(p)
    p.add_argument(
        "--profile-weight",
        type=float,
        default=DEFAULT_WEIGHT,
        help=f"the family system's profile weight, as seqdiff design's (default {DEFAULT_WEIGHT:g})",
    )
    p.add_argument("--checkpoint", help="base model folder (default: the shipped protein model)")
    p.add_argument("--device", default="cpu", help="cpu (the goals are CPU timings), cuda or auto")
    p.add_argument("--threads", type=int, default=2, help="torch threads (the goals: a 2-core CPU)")
    p.add_argument("--seed", type=int, default=0)
    # The CLI's: the second run's first step is one batch (the designs do not depend on it).
    p.add_argument("--batch-size", type=int, default=16)


def sampler(args: argparse.Namespace) -> dict:
    """The sampler settings of ``args`` as keyword arguments of `design`."""
    return {f.name: getattr(args, f.name) for f in fields(SamplerSettings)}


def adapted_family(msa: Path, args: argparse.Namespace) -> tuple[Family, dict]:
    """`prepare_family` as ``seqdiff design --homologs MSA`` calls it, and how long it took.

    No queries are given: the CLI passes the motif's PDB chain, and the EvoDiff MSAs' first rows are
    mostly other constructs of it (cropped, tagged), which the homolog reader's query check refuses.
    The queries play no other part (the cache key is the base model, the homologs and the recipe).
    """
    start = time.perf_counter()
    family = prepare_family(
        [],
        homologs=msa,
        checkpoint=args.checkpoint,
        recipe=AdaptRecipe(steps=args.adapt_steps, minutes=args.adapt_minutes),
        device=args.device,
        profile_weight=args.profile_weight,
    )
    seconds = time.perf_counter() - start
    return family, {
        "adapt_seconds": seconds,
        "adapt_reused": family.model.reused,
        "adapted": family.model.key,
    }


def timed_design(
    jobs: list[DesignJob], checkpoint: str | None, args: argparse.Namespace, prior: ProfileGuide | None = None
) -> tuple[list[Design], float]:
    """The designs (steered by ``prior``, a family's guide), and the `time.perf_counter` at which the
    sampler finished its first step."""
    first: list[float] = []

    def on_step(done: int, total: int) -> None:
        if not first:
            first.append(time.perf_counter())

    designs = design(
        jobs,
        checkpoint=checkpoint,
        **sampler(args),
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        progress=on_step,
        prior=prior,
    )
    return designs, first[0]


def family_scores(profile: FamilyProfile, sequences: list[str], jobs: list[DesignJob] | None = None) -> dict:
    """Recognition by the family HMM (whole designs; with ``jobs``, also their designed positions
    alone), median bit scores over the designs with a hit, diversity, and novelty (the mean over
    designs of the highest identity to a homolog, `FamilyProfile.nearest`)."""
    table = profile.score(sequences, [~j.fixed for j in jobs] if jobs else None)
    scores = {
        "recognised": float(table["recognised"].mean()),
        "family_bits_median": float(np.nanmedian(table["family_bits"])),
        "diversity_identity": mean_pairwise_identity(sequences),
        "nearest_identity_mean": float(table["nearest_identity"].mean()),
    }
    if jobs:
        scores["scaffold_recognised"] = float(table["scaffold_recognised"].mean())
        scores["scaffold_bits_median"] = float(np.nanmedian(table["scaffold_bits"]))
    return scores


def goal_table(measured: dict[str, float], system: str, scope: str) -> list[str]:
    """Markdown lines: each goal that ``measured`` has a value for, its threshold, and whether it is met."""
    lines = [
        f"## Goals ({system} system, {scope})",
        "",
        "| goal | threshold | measured | met |",
        "|---|---|---|---|",
    ]
    for name, op, threshold, what in GOALS:
        if name in measured and np.isfinite(measured[name]):
            value = measured[name]
            met = value >= threshold if op == ">=" else value <= threshold
            lines.append(f"| {what} | {op} {threshold:g} | {value:.3g} | {'yes' if met else 'no'} |")
    return [*lines, ""]


def load_rows(out: Path, resume: bool, merge: list[str], key: Callable[[dict], tuple]) -> list[dict]:
    """Rows to keep: those of ``out`` with ``resume``, and those of the ``merge`` files not already there."""
    rows = json.loads(out.read_text())["rows"] if resume and out.exists() else []
    done = {key(r) for r in rows}
    for other in merge:
        for row in json.loads(Path(other).read_text())["rows"]:
            if key(row) not in done:
                rows.append(row)
                done.add(key(row))
    return rows


def write_results(out: Path, payload: dict, markdown: str) -> None:
    """``out`` (JSON) and the same path with ``.md``, each written atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(payload, indent=1))
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(markdown)
