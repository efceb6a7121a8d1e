"""Family-generation benchmark: unconditional members of every family whose MSA has >= 100 sequences.

For each homolog MSA in ``family/evodiff_scaffold_msas`` with at least 100 sequences (or
``--families``), two systems sample ``--designs`` sequences from all-``_`` templates
(`plan_from_records`) at the same lengths, drawn (seeded, with replacement) from the homologs'
ungapped lengths that the model can hold:

- ``default``: the shipped model (``--checkpoint``), unadapted: the baseline;
- ``family``: the model adapted to the MSA by `prepare_family`, as ``seqdiff design --homologs`` does
  (cached in ``$SEQDIFF_CACHE``), with the same sampler settings (the CLI's defaults unless flags
  say otherwise).

Both are scored by one `FamilyProfile` per MSA (pyhmmer): the fraction recognised as members (E < 1e-3
in a search space of 100 sequences), the median bit score, diversity (mean pairwise identity among
the designs) and novelty (mean highest local-alignment identity to a homolog); for the family system
also the adaptation's wall seconds and whether it came from the cache.

Results: ``--out`` (JSON) and the same path with ``.md``; designs as FASTA under ``--work``.

The full run, on a quiet machine; with the cache of the motif benchmark's run its adaptations are
reused (same base model, homologs and recipe), otherwise each of the 13 MSAs is adapted (up to 5
minutes each). Split it with ``--families`` and join the parts with ``--merge``:
    SEQDIFF_CACHE=runs/bench-cache .venv/bin/python pipelines/bench_family.py \
        --out pipelines/results/family.json --threads 2
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipelines.family_bench_tools import (  # noqa: E402
    MIN_HOMOLOGS,
    MSAS,
    adapted_family,
    add_model_flags,
    family_scores,
    load_rows,
    timed_design,
    write_results,
)
from seqdiff.protein.design import DesignJob, plan_from_records  # noqa: E402
from seqdiff.protein.family import FamilyProfile  # noqa: E402
from seqdiff.protein.homologs import read_homologs  # noqa: E402
from seqdiff.protein.io import ProteinRecord, write_fasta  # noqa: E402
from seqdiff.protein.model import load_protein_model  # noqa: E402

SYSTEMS = ["default", "family"]
SCORES = ["mean_length", "recognised", "family_bits_median", "diversity_identity", "nearest_identity_mean"]


def families(names: list[str] | None) -> list[Path]:
    """The MSAs named (e.g. ``1prw``), or every one with at least `MIN_HOMOLOGS` distinct sequences."""
    if names:
        return [MSAS / f"{name.lower()}.a3m.gz" for name in names]
    return [msa for msa in sorted(MSAS.glob("*.a3m.gz")) if len(read_homologs(msa)) >= MIN_HOMOLOGS]


def unconditional_jobs(
    name: str, homolog_lengths: list[int], n: int, max_len: int, seed: int
) -> list[DesignJob]:
    """``n`` all-``_`` templates, lengths drawn from ``homolog_lengths`` up to ``max_len``; sorted, so
    that a batch holds similar lengths (little padding)."""
    fits = [length for length in homolog_lengths if length <= max_len]
    lengths = np.sort(np.random.default_rng(seed).choice(fits, size=n))
    return plan_from_records([ProteinRecord(f"{name}_{i}", "", "_" * int(k)) for i, k in enumerate(lengths)])


def evaluate(
    name: str, system: str, sequences: list[str], profile: FamilyProfile, args: argparse.Namespace
) -> dict:
    fasta = Path(args.work) / "designs" / f"{name}.{system}.fasta"
    fasta.parent.mkdir(parents=True, exist_ok=True)
    write_fasta([ProteinRecord(f"{name}_{system}_{i}", "", s) for i, s in enumerate(sequences)], fasta)
    return {
        "family": name,
        "system": system,
        "homologs": len(profile.homologs),
        "designs": len(sequences),
        "mean_length": float(np.mean([len(s) for s in sequences])),
        **family_scores(profile, sequences),
    }


def summarise(rows: list[dict]) -> list[dict]:
    """Per system, the mean over the families every system present was run on."""
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in rows)]
    common = (
        set.intersection(*({r["family"] for r in rows if r["system"] == s} for s in systems))
        if systems
        else set()
    )
    out = []
    for system in systems:
        mine = [r for r in rows if r["system"] == system and r["family"] in common]
        out.append(
            {
                "system": system,
                "families": len(mine),
                **{k: float(np.mean([r[k] for r in mine])) for k in SCORES},
            }
        )
    return out


def markdown(rows: list[dict], summary: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Family-generation benchmark",
        "",
        f"{args.designs} unconditional designs per family and system at lengths drawn from the homologs, "
        f"seed {args.seed}; sampler: {args.steps} steps, {args.grid} grid, {args.decoding} decoding, "
        f"temperature {args.temperature:g}, top-p {args.top_p:g}. Adaptation: at most {args.adapt_steps} steps "
        f"or {args.adapt_minutes:g} min, {args.threads} threads on {args.device}. Recognised: E < 1e-3 "
        "(search space 100 sequences) against the MSA's profile HMM; bits: median over designs with a hit; "
        "identity to homologs: local alignment.",
        "",
        "## Summary (mean over families)",
        "",
        "| system | families | mean length | recognised | bits (median) | diversity | identity to homologs |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['system']} | {s['families']} | {s['mean_length']:.0f} | {s['recognised']:.3f} | "
            f"{s['family_bits_median']:.1f} | {s['diversity_identity']:.3f} | {s['nearest_identity_mean']:.3f} |"
        )
    lines += [
        "",
        "## Per family",
        "",
        "| family | homologs | system | mean length | recognised | bits (median) | diversity | identity to homologs | adaptation s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        adapt = (
            f"{r['adapt_seconds']:.0f}{' (cached)' if r['adapt_reused'] else ''}"
            if "adapt_seconds" in r
            else "-"
        )
        lines.append(
            f"| {r['family']} | {r['homologs']} | {r['system']} | {r['mean_length']:.0f} | {r['recognised']:.2f} | "
            f"{r['family_bits_median']:.1f} | {r['diversity_identity']:.3f} | {r['nearest_identity_mean']:.3f} | {adapt} |"
        )
    return "\n".join(lines) + "\n"


def save(out: Path, rows: list[dict], args: argparse.Namespace) -> None:
    rows = sorted(rows, key=lambda r: (r["family"], SYSTEMS.index(r["system"])))
    summary = summarise(rows)
    write_results(
        out, {"settings": vars(args), "rows": rows, "summary": summary}, markdown(rows, summary, args)
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="results JSON (a .md is written next to it)")
    p.add_argument("--work", default="runs/family-bench", help="design FASTAs")
    p.add_argument(
        "--families",
        nargs="+",
        help=f"only these MSAs, e.g. 1prw (default: those with >= {MIN_HOMOLOGS} sequences)",
    )
    p.add_argument("--systems", nargs="+", default=SYSTEMS, choices=SYSTEMS)
    p.add_argument("--designs", type=int, default=100)
    add_model_flags(p)
    p.add_argument("--resume", action="store_true", help="keep the rows already in --out")
    p.add_argument(
        "--merge",
        nargs="+",
        default=[],
        help="results JSONs of other runs (e.g. other --families) to include",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    max_len = load_protein_model(args.checkpoint, torch.device("cpu"))[0].denoiser.cfg.max_len
    out = Path(args.out)
    rows = load_rows(out, args.resume, args.merge, lambda r: (r["family"], r["system"]))
    done = {(r["family"], r["system"]) for r in rows}
    for msa in families(args.families):
        name = msa.name.split(".")[0]
        profile = FamilyProfile.from_homologs(read_homologs(msa))
        jobs = unconditional_jobs(
            name, [len(s) for s in profile.homologs.sequences], args.designs, max_len, args.seed
        )
        for system in args.systems:
            if (name, system) in done:
                continue
            start = time.perf_counter()
            stats, checkpoint, guide = {}, args.checkpoint, None
            if system == "family":
                family, stats = adapted_family(msa, args)
                checkpoint, guide = str(family.model.path), family.guide
            designs, _ = timed_design(jobs, checkpoint, args, prior=guide)
            row = {**evaluate(name, system, [d.sequence for d in designs], profile, args), **stats}
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            logging.info("%s", json.dumps(row))
            save(out, rows, args)
    save(out, rows, args)


if __name__ == "__main__":
    main()
