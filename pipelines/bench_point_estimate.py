"""Point estimates of the table imputer compared on one fitted model: the predictive distribution
(one network pass per row, the default) against K joint draws (the sampler; one step per cell to
fill, and with each ``--sampling-steps`` S), each with the numeric cells' mean and median (the
categorical cells' mode / most frequent draw either way).

Same protocol as `bench_tabular.py` (complete rows, a random subsample, 30% MCAR, in-sample), one fit
per dataset, then `transform` with each point estimate; MAE / RMSE on z-scored numeric cells,
accuracy on categorical cells, and the transform's wall time.

Example:
    OPENBLAS_NUM_THREADS=1 .venv/bin/python pipelines/bench_point_estimate.py \\
        --out pipelines/results/point_estimate.json --datasets california adult --rows 5000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import product
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipelines.bench_tabular import DATASETS, mcar_problem  # noqa: E402
from pipelines.masks import metrics  # noqa: E402
from seqdiff.atomic import atomic_path  # noqa: E402
from seqdiff.tabular.encoding import NUMERIC_POINTS  # noqa: E402
from seqdiff.tabular.imputer import MaskedDiffusionImputer  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="results JSON (a .md is written next to it)")
    p.add_argument("--datasets", nargs="+", default=["california", "adult"], choices=DATASETS)
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--max-steps", type=int, default=800)
    p.add_argument("--draws", type=int, nargs="*", default=[1, 10], help="K for the draws estimate")
    p.add_argument(
        "--sampling-steps",
        type=int,
        nargs="*",
        default=[],
        metavar="S",
        help="also the draws estimates with S sampler steps per row (default: one per cell to fill only)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.datasets:
        df, schema, mask, holed = mcar_problem(name, args.rows, args.seed)
        imputer = MaskedDiffusionImputer(
            max_steps=args.max_steps, categorical=schema.categorical, numeric=schema.numeric, seed=args.seed
        ).fit(holed)
        steps = [None, *args.sampling_steps]
        estimates = [("predictive", 1, None)] + list(product(["draws"], args.draws, steps))
        for (point, k, s), numeric in product(estimates, NUMERIC_POINTS):
            imputer.set_params(point=point, n_samples=k, sampling_steps=s, numeric_point=numeric)
            start = time.perf_counter()
            imputed = imputer.transform(holed)
            seconds = time.perf_counter() - start
            scores = metrics(df, imputed, mask, schema)
            rows.append(
                {
                    "dataset": name,
                    "rows": len(df),
                    "point": point,
                    "draws": k,
                    "sampling_steps": s,
                    "numeric_point": numeric,
                    **scores,
                    "seconds": seconds,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=1))
    lines = [
        "| dataset | point estimate | MAE | RMSE | accuracy | transform seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        source = "predictive (one pass)" if r["point"] == "predictive" else f"{r['draws']} draws"
        if r.get("sampling_steps"):
            source += f", --sampling-steps {r['sampling_steps']}"
        label = f"{source}, {r['numeric_point']}"
        lines.append(
            f"| {r['dataset']} | {label} | {r['mae']:.3f} | {r['rmse']:.3f} | {r['accuracy']:.3f} | {r['seconds']:.1f} |"
        )
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
