"""Imputation on a shared machine: ``seqdiff impute`` and MissForest (reference settings) on one table,
first on a quiet machine, then with ``--busy`` processes spinning beside them, each tool at the thread
count a user gets without asking: seqdiff's CLI takes the cores the rest of the machine leaves free
(`seqdiff.threads.default_threads`), MissForest's forests ``n_jobs`` = every core.

The table is one of the tabular benchmark's: its complete rows, 30% of cells hidden (MCAR), written to
a Parquet file that ``seqdiff impute`` reads as a user would; MissForest runs in this process. The
busy processes start ``--settle`` seconds before the first timed run and are stopped whatever happens.
Results (seconds, MAE, accuracy, each tool's slowdown) go to ``--out``.

Example:
    .venv/bin/python pipelines/bench_busy.py --out pipelines/results/tabular_busy.json \\
        --dataset california --busy 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.bench_tabular import DATASETS, mcar_problem  # noqa: E402
from pipelines.masks import metrics  # noqa: E402
from pipelines.tabular_baselines import missforest_impute  # noqa: E402
from seqdiff.atomic import atomic_path  # noqa: E402
from seqdiff.tabular.schema import Schema  # noqa: E402
from seqdiff.threads import busy_cores, default_threads  # noqa: E402

SPIN = "while True: pass"


@contextmanager
def busy_processes(n: int, settle: float) -> Iterator[list[subprocess.Popen]]:
    """`n` processes that each keep a core busy, started `settle` seconds before the block runs and
    killed when it ends."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
    try:
        time.sleep(settle if n else 0)
        yield spinners
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def seqdiff_cli(holed: Path, out: Path, max_steps: int | None) -> tuple[float, dict]:
    """Seconds ``seqdiff impute holed -o out`` took (its own defaults: threads, steps), and the busy
    cores it started beside (`busy_cores`, measured just before) with the threads they leave it
    (`default_threads`)."""
    cmd = [sys.executable, "-m", "seqdiff.cli", "impute", str(holed), "-o", str(out)]
    if max_steps is not None:
        cmd += ["--max-steps", str(max_steps)]
    busy = busy_cores()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start, {"busy_cores": busy, "threads": default_threads(busy=busy)}


def run_both(
    holed: pd.DataFrame, path: Path, schema: Schema, max_steps: int | None, max_iter: int
) -> dict[str, tuple[pd.DataFrame, float, dict]]:
    """Each tool's imputed table, seconds and what else is known of its run."""
    out = path.with_name("imputed.parquet")
    seconds, started = seqdiff_cli(path, out, max_steps)
    result = {"seqdiff": (pd.read_parquet(out), seconds, started)}
    n_jobs = os.cpu_count() or 1
    start = time.perf_counter()
    forest = missforest_impute(holed, schema, n_jobs=n_jobs, max_iter=max_iter)
    result["missforest"] = (forest, time.perf_counter() - start, {"n_jobs": n_jobs})
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    parser.add_argument("--dataset", choices=DATASETS, default="california")
    parser.add_argument("--rows", type=int, default=20_000, help="subsample to this many rows")
    parser.add_argument("--busy", type=int, default=2, help="spinning processes beside the tools")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds the spinners run first")
    parser.add_argument("--max-steps", type=int, help="seqdiff's --max-steps (default: its own)")
    parser.add_argument("--max-iter", type=int, default=10, help="MissForest's iterations at most")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    df, schema, mask, holed = mcar_problem(args.dataset, args.rows, args.seed)
    runs: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{args.dataset}.holed.parquet"
        holed.to_parquet(path)
        for condition, n in [("quiet", 0), ("busy", args.busy)]:
            with busy_processes(n, args.settle):
                outputs = run_both(holed, path, schema, args.max_steps, args.max_iter)
            runs[condition] = {
                tool: {"seconds": seconds, **run, **metrics(df, imputed, mask, schema)}
                for tool, (imputed, seconds, run) in outputs.items()
            }
    result = {
        "dataset": args.dataset,
        "rows": len(df),
        "busy_processes": args.busy,
        "cores": os.cpu_count(),
        "runs": runs,
        "slowdown": {
            tool: runs["busy"][tool]["seconds"] / runs["quiet"][tool]["seconds"] for tool in runs["quiet"]
        },
    }
    with atomic_path(args.out) as tmp_out:
        Path(tmp_out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["slowdown"]))
    return result


if __name__ == "__main__":
    main()
