"""Choosing the profile weight (and decoding) of ``seqdiff design --homologs``: recognition against diversity.

For each problem (contig layouts as in `bench_motif`), the family's MSA is split in two halves (its
first row, the target, in both). The adapted model is the one ``seqdiff design --homologs MSA`` makes
(`prepare_family`, cached); the guide is built from the first half's profile HMM; designs are scored by
the profile of each half: the *held-out* referee never saw the sequences that steered the designs.
Every (weight, temperature, decoding) fills the same layouts with the same seed. Identity to homologs is
against all of them.

    SEQDIFF_CACHE=runs/bench-cache .venv/bin/python pipelines/bench_profile_weight.py \\
        --out pipelines/results/profile_weight.json --problems 1PRW 7MRX_60 5TRV_short 6E6R_short \\
        --weights 0 2 3 4 --temperatures 1 --designs 20 --threads 1
    (add e.g. ``--weights 3 --decodings ancestral confidence remask`` to compare decodings)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from itertools import product
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipelines.bench_motif import msa_of, problems  # noqa: E402
from pipelines.family_bench_tools import adapted_family, add_model_flags, timed_design, write_results  # noqa: E402
from pipelines.protein_metrics import mean_pairwise_identity  # noqa: E402
from seqdiff.core.sampler_settings import DECODINGS  # noqa: E402
from seqdiff.protein.design import plan_from_contig  # noqa: E402
from seqdiff.protein.family import FamilyProfile  # noqa: E402
from seqdiff.protein.profile_guide import ProfileGuide  # noqa: E402


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Profile weight: recognition against diversity",
        "",
        f"Settings: {vars(args)}",
        "",
        "| problem | weight | temperature | decoding | scaffold recognised (held-out half) "
        "| scaffold recognised (guiding half) | scaffold bits, held-out (median) | pairwise identity "
        "| identity to homologs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['problem']} | {r['weight']:g} | {r['temperature']:g} | {r['decoding']} | "
            f"{r['scaffold_recognised_held_out']:.2f} | "
            f"{r['scaffold_recognised_guiding']:.2f} | {r['scaffold_bits_held_out']:.1f} | "
            f"{r['diversity_identity']:.3f} | {r['nearest_identity_mean']:.3f} |"
        )
    lines += [
        "",
        "Means over the problems:",
        "",
        "| weight | temperature | decoding | scaffold recognised (held-out) | pairwise identity |",
        "|---|---|---|---|---|",
    ]
    for weight, temperature, decoding in product(args.weights, args.temperatures, args.decodings):
        mine = [
            r
            for r in rows
            if (r["weight"], r["temperature"], r["decoding"]) == (weight, temperature, decoding)
        ]
        if mine:
            recog = np.mean([r["scaffold_recognised_held_out"] for r in mine])
            diversity = np.mean([r["diversity_identity"] for r in mine])
            lines.append(f"| {weight:g} | {temperature:g} | {decoding} | {recog:.2f} | {diversity:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="results JSON (a .md is written next to it)")
    p.add_argument("--problems", nargs="+", required=True, help="problem names as in problems.csv")
    p.add_argument("--weights", nargs="+", type=float, default=[0.0, 2.0, 3.0, 4.0])
    p.add_argument("--temperatures", nargs="+", type=float, default=[1.0])
    p.add_argument("--decodings", nargs="+", default=["ancestral"], choices=DECODINGS)
    p.add_argument("--designs", type=int, default=20)
    add_model_flags(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rows = []
    for problem in [q for q in problems() if q.name in args.problems]:
        family, _ = adapted_family(msa_of(problem), args)
        guiding, held_out = (FamilyProfile.from_homologs(h) for h in family.homologs.halves())
        jobs = plan_from_contig(
            problem.contig, problem.pdb_path, problem.length_range, n=args.designs, seed=args.seed,
            numbering=problem.numbering, source_name=problem.name,
        )  # fmt: skip
        # One guide per weight: the reference's alignment to the HMM is the same for every setting.
        guides = {w: ProfileGuide.from_hmm(guiding.hmm, family.guide.reference, w) for w in args.weights}
        for weight, temperature, decoding in product(args.weights, args.temperatures, args.decodings):
            guide = guides[weight]
            start = time.perf_counter()
            run = replace_args(args, temperature=temperature, decoding=decoding)
            designs, _ = timed_design(jobs, str(family.model.path), run, prior=guide)
            sequences, masks = [d.sequence for d in designs], [~d.job.fixed for d in designs]
            seen, unseen = guiding.score(sequences, masks), held_out.score(sequences, masks)
            row = {
                "problem": problem.name,
                "weight": weight,
                "temperature": temperature,
                "decoding": decoding,
                "scaffold_recognised_held_out": float(unseen["scaffold_recognised"].mean()),
                "scaffold_recognised_guiding": float(seen["scaffold_recognised"].mean()),
                "scaffold_bits_held_out": float(np.nanmedian(unseen["scaffold_bits"])),
                "diversity_identity": mean_pairwise_identity(sequences),
                "nearest_identity_mean": float(family.profile.nearest(sequences)[0].mean()),
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            logging.info("%s", row)
            write_results(Path(args.out), {"settings": vars(args), "rows": rows}, markdown(rows, args))


def replace_args(args: argparse.Namespace, **changes: object) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), **changes})


if __name__ == "__main__":
    main()
