"""Peak memory and speed of ``seqdiff impute`` as the file grows: streaming keeps memory flat.

Builds Parquet files of the complete adult rows with 30% of cells hidden (MCAR), repeated to
``--rows`` rows each (the benchmark tables have 20,000 rows; the default sizes go to 10x that), fits
one small model on the smallest file, then imputes every file with that model in a fresh
``seqdiff impute --checkpoint`` process under ``/usr/bin/time -v``: peak resident memory (max RSS)
and wall time per file, hence imputed rows per second at transform time.

Example:
    .venv/bin/python pipelines/bench_memory.py --out pipelines/results/memory.json --rows 20000 200000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipelines.masks import make_missing_mask  # noqa: E402
from seqdiff.atomic import atomic_path  # noqa: E402

ADULT = ROOT.parent / "shared" / "data" / "tabular" / "adult.parquet"


def holed_table(rows: int, seed: int) -> pd.DataFrame:
    """``rows`` complete adult rows (repeated as needed) with 30% of cells hidden at random."""
    df = pq.read_table(ADULT).to_pandas().dropna().reset_index(drop=True)
    df = df.iloc[np.arange(rows) % len(df)].reset_index(drop=True)
    return df.mask(make_missing_mask(df, 0.3, "mcar", rng=seed))


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(max resident memory in MiB, wall seconds) of a command run under /usr/bin/time -v."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    return kib / 1024, seconds


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="results JSON (a .md is written next to it)")
    p.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000])
    p.add_argument("--batch-rows", type=int, default=20_000)
    p.add_argument("--fit-steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    seqdiff = str(Path(sys.executable).parent / "seqdiff")
    env_threads = {"OMP_NUM_THREADS": str(args.threads)}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {}
        for rows in sorted(args.rows):
            files[rows] = tmp / f"adult_{rows}.parquet"
            holed_table(rows, args.seed).to_parquet(files[rows], index=False)
        model = tmp / "model"
        smallest = files[min(files)]
        fit = [seqdiff, "impute", str(smallest), "-o", str(tmp / "fit.parquet"), "--save-model", str(model)]
        subprocess.run(
            [*fit, "--max-steps", str(args.fit_steps), "--seed", str(args.seed)],
            check=True,
            capture_output=True,
            env={**os.environ, **env_threads},
        )
        for rows, path in files.items():
            out = tmp / f"out_{rows}.parquet"
            command = [
                seqdiff,
                "impute",
                str(path),
                "-o",
                str(out),
                "--checkpoint",
                str(model),
                "--batch-rows",
                str(args.batch_rows),
                "--seed",
                str(args.seed),
            ]
            rss, seconds = timed(command, env={**os.environ, **env_threads})
            cells = int(pd.read_parquet(path).isna().sum().sum())
            assert int(pd.read_parquet(out).isna().sum().sum()) == 0
            results.append(
                {
                    "rows": rows,
                    "file_mib": path.stat().st_size / 2**20,
                    "missing_cells": cells,
                    "max_rss_mib": rss,
                    "seconds": seconds,
                    "rows_per_s": rows / seconds,
                }
            )
            print(json.dumps(results[-1]), flush=True)
    # Process start-up (imports, model load) is in every wall time; the marginal rate excludes it.
    if len(results) > 1:
        first, last = results[0], results[-1]
        marginal = (last["rows"] - first["rows"]) / (last["seconds"] - first["seconds"])
    else:
        marginal = None
    report = {
        "marginal_rows_per_s": marginal,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d"),
        "settings": vars(args),
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp_out:
        tmp_out.write_text(json.dumps(report, indent=1))
    lines = [
        "| rows | file MiB | missing cells | max RSS MiB | seconds | rows/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} | {r['file_mib']:.1f} | {r['missing_cells']:,} | {r['max_rss_mib']:.0f} | "
            f"{r['seconds']:.1f} | {r['rows_per_s']:.0f} |"
        )
    with atomic_path(out.with_suffix(".md")) as tmp_md:
        tmp_md.write_text("\n".join(lines) + f"\n\nMarginal rate (start-up excluded): {marginal} rows/s\n")


if __name__ == "__main__":
    main()
