"""Peak memory and speed of ``seqdiff impute`` as the file grows (streaming keeps memory flat), as the
table widens, and as a column's vocabulary grows.

``--case rows`` (the default) builds Parquet files of the complete adult rows with 30% of cells hidden (MCAR), repeated to
``--rows`` rows each (the benchmark tables have 20,000 rows; the default sizes go to 10x that), fits
one small model on the smallest file, then imputes every file with that model in a fresh
``seqdiff impute --checkpoint`` process under ``/usr/bin/time -v``: peak resident memory (max RSS)
and wall time per file, hence imputed rows per second at transform time.

``--case wide`` (a numeric table of ``--columns`` columns, 2,000 rows by default) and ``--case vocab`` (a
column of ``--categories`` categories, each in three rows, beside two numeric and one small categorical
column; 30,000 rows by default), 20% of cells hidden (5% of the large column's), time one
``seqdiff impute`` that fits (``--fit-steps`` steps, early stopping on) and imputes, in a fresh
process: the memory of training, of scoring the held-out cells, and of imputing (``--samples K``: by
K joint draws per row instead of the one-pass estimate, ``--sampling-steps S`` steps each).

Example:
    .venv/bin/python pipelines/bench_memory.py --out pipelines/results/memory.json --rows 20000 200000
    .venv/bin/python pipelines/bench_memory.py --out pipelines/results/memory_wide.json --case wide \
        --fit-steps 30
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


def wide_table(rows: int, columns: int, seed: int) -> pd.DataFrame:
    """``rows`` x ``columns`` standard normal numbers with 20% of cells hidden at random."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns))
    x[rng.random(x.shape) < 0.2] = np.nan
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(columns)])


def vocab_table(rows: int, categories: int, seed: int) -> pd.DataFrame:
    """A column of ``categories`` categories (each in rows // categories rows, so not an identifier),
    two numeric columns and a 4-category one; 5% of the large column's cells hidden, 20% of the others'."""
    rng = np.random.default_rng(seed)
    codes = rng.permutation(np.arange(rows) % categories)
    df = pd.DataFrame(
        {
            "code": [f"c{i}" for i in codes],
            "a": rng.normal(size=rows),
            "b": rng.choice(list("pqrs"), rows),
            "c": rng.normal(size=rows),
        }
    )
    for column, rate in [("code", 0.05), ("a", 0.2), ("b", 0.2), ("c", 0.2)]:
        df.loc[rng.random(rows) < rate, column] = None
    return df


def fit_and_impute(args: argparse.Namespace, seqdiff: str, env: dict[str, str]) -> list[dict]:
    """``--case wide`` / ``vocab``: peak memory and time of one ``seqdiff impute`` that fits and imputes."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            if args.case == "wide":
                df, shape = wide_table(rows, args.columns, args.seed), {"columns": args.columns}
            else:
                df, shape = vocab_table(rows, args.categories, args.seed), {"categories": args.categories}
            path, out = Path(tmp) / f"{args.case}_{rows}.parquet", Path(tmp) / "out.parquet"
            df.to_parquet(path, index=False)
            command = [seqdiff, "impute", str(path), "-o", str(out), "--max-steps", str(args.fit_steps)]
            if args.samples:
                command += ["--samples", str(args.samples)]
            if args.sampling_steps:
                command += ["--sampling-steps", str(args.sampling_steps)]
            rss, seconds = timed([*command, "--seed", str(args.seed)], env)
            assert int(pd.read_parquet(out).isna().sum().sum()) == 0
            cells = int(df.isna().sum().sum())
            results.append(
                {
                    "rows": rows,
                    **shape,
                    "samples": args.samples,
                    "sampling_steps": args.sampling_steps,
                    "missing_cells": cells,
                    "max_rss_mib": rss,
                    "seconds": seconds,
                }
            )
            print(json.dumps(results[-1]), flush=True)
    return results


def write(out: Path, report: dict, markdown: str) -> None:
    """The results JSON (with the machine and the date) and its Markdown table, atomically."""
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d"),
    } | report
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp_out:
        tmp_out.write_text(json.dumps(report, indent=1))
    with atomic_path(out.with_suffix(".md")) as tmp_md:
        tmp_md.write_text(markdown)


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
    p.add_argument("--case", choices=["rows", "wide", "vocab"], default="rows")
    p.add_argument(
        "--rows",
        type=int,
        nargs="+",
        help="rows per file (default: 20,000 and 200,000; wide: 2,000; vocab: 30,000)",
    )
    p.add_argument("--columns", type=int, default=300, help="--case wide: numeric columns")
    p.add_argument("--categories", type=int, default=10_000, help="--case vocab: the large column's")
    p.add_argument("--batch-rows", type=int, default=20_000)
    p.add_argument("--fit-steps", type=int, default=300)
    p.add_argument(
        "--samples",
        type=int,
        help="--case wide / vocab: impute with --samples K (joint draws; default: one pass)",
    )
    p.add_argument(
        "--sampling-steps",
        type=int,
        metavar="S",
        help="with --samples: --sampling-steps S (default: one step per cell to fill)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.rows = args.rows or {"rows": [20_000, 200_000], "wide": [2_000], "vocab": [30_000]}[args.case]
    seqdiff = str(Path(sys.executable).parent / "seqdiff")
    env_threads = {"OMP_NUM_THREADS": str(args.threads)}
    if args.case != "rows":
        results = fit_and_impute(args, seqdiff, {**os.environ, **env_threads})
        lines = [
            "| case | rows | shape | missing cells | max RSS MiB | seconds |",
            "|---|---|---|---|---|---|",
        ]
        for r in results:
            shape = f"{r['columns']} columns" if args.case == "wide" else f"{r['categories']:,} categories"
            if r["samples"]:
                shape += f", --samples {r['samples']}"
            if r.get("sampling_steps"):
                shape += f", --sampling-steps {r['sampling_steps']}"
            lines.append(
                f"| {args.case} | {r['rows']:,} | {shape} | {r['missing_cells']:,} | {r['max_rss_mib']:.0f} | "
                f"{r['seconds']:.1f} |"
            )
        write(Path(args.out), {"settings": vars(args), "results": results}, "\n".join(lines) + "\n")
        return
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
    lines = [
        "| rows | file MiB | missing cells | max RSS MiB | seconds | rows/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} | {r['file_mib']:.1f} | {r['missing_cells']:,} | {r['max_rss_mib']:.0f} | "
            f"{r['seconds']:.1f} | {r['rows_per_s']:.0f} |"
        )
    report = {"marginal_rows_per_s": marginal, "settings": vars(args), "results": results}
    markdown = "\n".join(lines) + f"\n\nMarginal rate (start-up excluded): {marginal} rows/s\n"
    write(Path(args.out), report, markdown)


if __name__ == "__main__":
    main()
