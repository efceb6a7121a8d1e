"""Multiple imputation: how well the K draws of ``seqdiff impute --samples K --keep-draws`` (the
imputer's `transform_samples`) state their uncertainty, against miceforest's K datasets at its default
mean matching, on the same holed table, in one process.

Same protocol as `bench_tabular.py` (complete rows, a random subsample, 30% MCAR, in-sample); seqdiff
fits with its defaults. Scores (`pipelines.masks.draw_calibration`): the share of true numeric values
inside the draws' central 50/80/90% ranges and the 80% range's width in standard deviations; for
categorical cells, the draws' agreement with their most frequent value against how often that value is
right. With K draws, a calibrated imputer covers about (K-1)/(K+1) of each level (the range between
two sample quantiles), shown as the "calibrated" row. Dependence (`pipelines.masks.pair_dependence`):
for pairs of numeric cells missing from the same row, the correlation of the draws around their mean
against that of the true values, where the true one is strong.

Example:
    .venv/bin/python pipelines/bench_draws.py --out pipelines/results/draws.json \\
        --datasets california adult --rows 5000 --draws 20 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipelines.bench_tabular import DATASETS, mcar_problem  # noqa: E402
from pipelines.masks import COVERAGE_LEVELS, draw_calibration, pair_dependence  # noqa: E402
from pipelines.tabular_baselines import miceforest_datasets  # noqa: E402
from seqdiff.atomic import atomic_path  # noqa: E402
from seqdiff.tabular.imputer import MaskedDiffusionImputer  # noqa: E402

METHODS = ("seqdiff", "miceforest")
SCORES = (
    "coverage_50",
    "coverage_80",
    "coverage_90",
    "width_80",
    "confidence",
    "vote_accuracy",
    "pair_corr_draws",
    "pair_corr_truth",
    "dependent_pairs",
)


def draws_of(method: str, holed, schema, args: argparse.Namespace) -> list:
    """The K completed tables of `method`."""
    if method == "seqdiff":
        imputer = MaskedDiffusionImputer(
            categorical=schema.categorical,
            numeric=schema.numeric,
            seed=args.seed,
            max_steps=args.max_steps,
            sampling_steps=args.sampling_steps,
        )
        return imputer.fit(holed).transform_samples(holed, args.draws)
    return miceforest_datasets(holed, schema, datasets=args.draws, n_jobs=args.threads, seed=args.seed)


def write_table(path: Path, rows: list[dict], draws: int) -> None:
    """The Markdown table of the scored `rows` (K = `draws`), with the calibrated row first."""
    calibrated = [(draws - 1) / (draws + 1) * level for level in COVERAGE_LEVELS]
    lines = [
        f"| dataset | method ({draws} draws) | numeric cells in the 50% / 80% / 90% range | 80% range "
        "width (sd) | categorical: draws' agreement / vote accuracy | dependent pairs: draws' / true "
        "correlation (pairs) | seconds (fit + draws) |",
        "|---|---|---|---|---|---|---|",
        f"| | calibrated | {' / '.join(f'{c:.3f}' for c in calibrated)} | | equal | equal | |",
    ]
    for r in rows:
        coverage = " / ".join(f"{r[f'coverage_{round(level * 100)}']:.3f}" for level in COVERAGE_LEVELS)
        pairs = f"{r['pair_corr_draws']:.2f} / {r['pair_corr_truth']:.2f} " if r["dependent_pairs"] else "- "
        lines.append(
            f"| {r['dataset']} | {r['method']} | {coverage} | {r['width_80']:.2f} | "
            f"{r['confidence']:.3f} / {r['vote_accuracy']:.3f} | {pairs}({r['dependent_pairs']}) | "
            f"{r['seconds']:.0f} |"
        )
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="results JSON (a .md is written next to it)")
    p.add_argument("--datasets", nargs="+", default=["california", "adult"], choices=DATASETS)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--draws", type=int, default=20, help="K: draws (datasets) per method")
    p.add_argument("--max-steps", type=int, default=2000, help="seqdiff's training schedule (its default)")
    p.add_argument(
        "--sampling-steps", type=int, help="seqdiff's sampler steps per row (default: one per cell to fill)"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.datasets:
        df, schema, mask, holed = mcar_problem(name, args.rows, args.seed)
        for method in args.methods:
            start = time.perf_counter()
            draws = draws_of(method, holed, schema, args)
            seconds = time.perf_counter() - start
            scores = {**draw_calibration(df, draws, mask, schema), **pair_dependence(df, draws, mask, schema)}
            rows.append({"dataset": name, "rows": len(df), "method": method, **scores, "seconds": seconds})
            print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=1))
    write_table(out.with_suffix(".md"), rows, args.draws)


if __name__ == "__main__":
    main()
