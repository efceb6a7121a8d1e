"""Tabular imputation benchmark (DiffPuter protocol) and synthetic-data fidelity of seqdiff's table model.

Imputation: for each dataset, the complete rows (a random subsample of ``--rows`` rows where there are more;
20,000 by default), cells hidden by a 30% MCAR / MAR / MNAR mask (`pipelines.masks`), imputed
in-sample (the imputer is fitted on the holed table itself), scored on the hidden cells: MAE and RMSE of
z-scored numeric cells, accuracy of categorical cells, and the fit + impute wall time. Methods: seqdiff
MD4 (linear schedule), seqdiff GenMD4 (one learned rate per column value), and the baselines mean/mode,
MICE, MissForest with R missForest's settings ("missforest"), the MissForest loop with regression trees on
all features ("missforest-all-features"), miceforest (LightGBM, 5 iterations, no mean matching) and KNN
(`pipelines.tabular_baselines`), all on the same --threads cores.

Fidelity: ``sample(n)`` rows of the MD4 model (fitted on the MCAR-holed table) against the complete real
rows. Column shape similarity is 1 - KS statistic (numeric) or 1 - total variation distance
(categorical); pair-trend similarity is 1 - |Pearson difference| / 2 for two numeric columns and the
contingency similarity (1 - TVD of the joint distribution, numeric columns cut at 10 quantiles of the
real data) otherwise: the TabSyn / SDMetrics definitions. "marginals" (every column resampled
independently from the real rows) is the reference that keeps the shapes and loses every trend.

Results go to ``--out`` (JSON), the same path with ``.md`` (tables) and ``.html`` (fidelity figure),
rewritten after each dataset.

Example (a quick run):
    OPENBLAS_NUM_THREADS=1 .venv/bin/python pipelines/bench_tabular.py --out results/tabular_quick.json \\
        --datasets california adult --mechanisms mcar --rows 5000 --max-minutes 5
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import sys
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from scipy.stats import ks_2samp
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # pipelines/ is a script folder
from pipelines.masks import column_metrics, imputable_columns, make_missing_mask, metrics  # noqa: E402
from pipelines.tabular_baselines import BASELINES  # noqa: E402
from seqdiff.atomic import atomic_path  # noqa: E402
from seqdiff.tabular.encoding import NUMERIC_POINTS  # noqa: E402
from seqdiff.tabular.imputer import MaskedDiffusionImputer  # noqa: E402
from seqdiff.tabular.prediction import POINT_ESTIMATES  # noqa: E402
from seqdiff.tabular.schema import Schema, infer_schema  # noqa: E402
from seqdiff.tabular.settings import FitSettings, add_fit_flags, given_fit_settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "tabular"
DATASETS = ["adult", "default", "beijing", "magic", "california", "shoppers"]
MECHANISMS = ["mcar", "mar", "mnar"]
SEQDIFF = {
    "seqdiff-md4": {"schedule": "linear"},
    "seqdiff-genmd4": {"schedule": "genmd4", "tie_rates": "value"},
}
METHODS = [*SEQDIFF, *BASELINES]
TREND_BINS = 10
FIDELITY_FIT = "mcar"  # the synthetic rows come from the MD4 model fitted for this mechanism
# What "missforest" means in a results file; files without it hold the all-features variant under that name.
MISSFOREST = "reference settings"


def load_complete(name: str, rows: int, seed: int) -> pd.DataFrame:
    """The complete rows of a dataset, subsampled to `rows` when it has more."""
    df = pq.read_table(DATA / f"{name}.parquet").to_pandas().dropna()
    if len(df) > rows:
        df = df.sample(rows, random_state=seed)
    return df.reset_index(drop=True)


def mcar_problem(name: str, rows: int, seed: int) -> tuple[pd.DataFrame, Schema, np.ndarray, pd.DataFrame]:
    """The single-table benchmarks' problem: (the complete rows, their schema, a 30% MCAR mask, the
    holed table)."""
    df = load_complete(name, rows, seed)
    schema = infer_schema(df)
    mask = make_missing_mask(df, 0.3, "mcar", rng=seed, schema=schema)
    return df, schema, mask, df.mask(mask)


def impute(
    method: str, holed: pd.DataFrame, schema: Schema, args: argparse.Namespace
) -> tuple[pd.DataFrame, Any]:
    """(imputed table, the fitted seqdiff imputer or None)."""
    if method in SEQDIFF:
        imputer = MaskedDiffusionImputer(
            **given_fit_settings(args),
            point=args.point,
            numeric_point=args.numeric_point,
            dim=args.dim,
            n_samples=args.samples,
            categorical=schema.categorical,
            numeric=schema.numeric,
            seed=args.seed,
            device=args.device,
            **SEQDIFF[method],
        )
        return imputer.fit_transform(holed), imputer
    # The forests (MissForest's trees, miceforest's LightGBM) parallelise beyond BLAS: the same cores.
    cores = {"n_jobs": args.threads} if "n_jobs" in inspect.signature(BASELINES[method]).parameters else {}
    return BASELINES[method](holed, schema, **cores), None


def _tvd(real: pd.Series, synth: pd.Series) -> float:
    p = real.value_counts(normalize=True)
    q = synth.value_counts(normalize=True)
    return 0.5 * float(p.sub(q, fill_value=0).abs().sum())


def _binned(real: pd.Series, synth: pd.Series, numeric: bool) -> tuple[pd.Series, pd.Series]:
    """Categorical codes for the contingency tables; numeric columns cut at real-data quantiles."""
    if not numeric:
        return real.astype(str), synth.astype(str)
    edges = np.unique(np.quantile(real.to_numpy(float), np.linspace(0, 1, TREND_BINS + 1)[1:-1]))
    return (
        pd.Series(np.searchsorted(edges, real.to_numpy(float), side="right")),
        pd.Series(np.searchsorted(edges, synth.to_numpy(float), side="right")),
    )


def fidelity(real: pd.DataFrame, synth: pd.DataFrame, schema: Schema) -> dict:
    """Per-column shape and per-pair trend similarity (1 = indistinguishable), and their means."""
    numeric, categorical = imputable_columns(real, schema)
    columns = [c for c in real.columns if c in numeric or c in categorical]
    shape = {}
    for c in columns:
        if c in numeric:
            shape[c] = 1 - float(
                ks_2samp(real[c].to_numpy(float), synth[c].to_numpy(float), method="asymp").statistic
            )
        else:
            shape[c] = 1 - _tvd(real[c].astype(str), synth[c].astype(str))
    binned = {c: _binned(real[c], synth[c], c in numeric) for c in columns}
    trend = {}
    for a, b in combinations(columns, 2):
        if a in numeric and b in numeric:
            r = np.corrcoef(real[a].to_numpy(float), real[b].to_numpy(float))[0, 1]
            s = np.corrcoef(synth[a].to_numpy(float), synth[b].to_numpy(float))[0, 1]
            trend[f"{a}|{b}"] = 1 - abs(np.nan_to_num(r) - np.nan_to_num(s)) / 2
        else:
            joint_real = binned[a][0].astype(str) + "|" + binned[b][0].astype(str)
            joint_synth = binned[a][1].astype(str) + "|" + binned[b][1].astype(str)
            trend[f"{a}|{b}"] = 1 - _tvd(joint_real, joint_synth)
    return {
        "shape": float(np.mean(list(shape.values()))),
        "trend": float(np.mean(list(trend.values()))) if trend else float("nan"),
        "shape_by_column": shape,
        "trend_by_pair": trend,
    }


def independent_marginals(real: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: real[c].to_numpy()[rng.permutation(len(real))] for c in real.columns})


def _auto(value: object) -> object:
    """A setting as the report prints it: None (worked out for each table) as "auto"."""
    return "auto" if value is None else value


def markdown(results: list[dict], fidelities: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Tabular imputation benchmark (DiffPuter protocol)",
        "",
        f"Complete rows, random subsample of at most {args.rows:,} rows; {int(args.rate * 100)}% of cells hidden; "
        f"in-sample imputation. seqdiff: max_steps={_auto(args.max_steps)}, max_extra_steps={_auto(args.max_extra_steps)}, "
        f"extend_tol={args.extend_tol}, max_minutes={args.max_minutes}, "
        f"early_stopping={args.early_stopping}, loss_weighting={args.loss_weighting}, precision={args.precision}, "
        f"point={args.point}, numeric_point={args.numeric_point}, n_bins={args.bins}, max_bin_width={args.max_bin_width}, value_frequencies={args.value_frequencies}, batch_rows={_auto(args.fit_batch_rows)}, "
        f"dim={args.dim}, n_layers={args.n_layers}, n_samples={args.samples}, device={args.device}, "
        f"threads={args.threads}. MAE / RMSE on z-scored numeric cells (lower is "
        "better), accuracy on categorical cells (higher is better), time = fit + impute seconds.",
        "",
    ]
    methods = [m for m in METHODS if any(r["method"] == m for r in results)]
    for metric, label in [
        ("mae", "MAE"),
        ("rmse", "RMSE"),
        ("accuracy", "Accuracy"),
        ("seconds", "Time (s)"),
    ]:
        lines += [f"## {label}", "", "| dataset | mechanism | rows | " + " | ".join(methods) + " |"]
        lines.append("|---|---|---|" + "---|" * len(methods))
        keys = sorted(
            {(r["dataset"], r["mechanism"], r["rows"]) for r in results}, key=lambda k: (k[0], k[1])
        )
        for dataset, mechanism, rows in keys:
            cells = []
            for m in methods:
                found = [
                    r
                    for r in results
                    if (r["dataset"], r["mechanism"], r["method"]) == (dataset, mechanism, m)
                ]
                value = found[0][metric] if found else None
                # No value: not run, or no cell of that kind hidden (e.g. MAR keeps some columns whole).
                missing = value is None or np.isnan(value)
                cells.append("" if missing else f"{value:.{0 if metric == 'seconds' else 3}f}")
            lines.append(f"| {dataset} | {mechanism} | {rows} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += per_column_markdown(results, methods)
    if fidelities:
        lines += ["## Synthetic-data fidelity", "", "| dataset | source | rows | column shape | pair trend |"]
        lines.append("|---|---|---|---|---|")
        for f in fidelities:
            lines.append(
                f"| {f['dataset']} | {f['source']} | {f['rows']} | {f['shape']:.3f} | {f['trend']:.3f} |"
            )
        lines.append("")
    return "\n".join(lines)


def per_column_markdown(results: list[dict], methods: list[str]) -> list[str]:
    """One table per dataset and mechanism: each column's MAE (numeric) or accuracy (categorical) by method."""
    lines = ["## Per column (MAE for numeric columns, accuracy for categorical ones)", ""]
    for dataset, mechanism in sorted({(r["dataset"], r["mechanism"]) for r in results}):
        found = {
            r["method"]: r.get("per_column", {})
            for r in results
            if (r["dataset"], r["mechanism"]) == (dataset, mechanism)
        }
        names = list(dict.fromkeys(name for m in methods for name in found.get(m, {})))
        if not names:
            continue  # results written before per-column scores were kept
        lines += [f"### {dataset}, {mechanism}", "", "| column | kind | " + " | ".join(methods) + " |"]
        lines.append("|---|---|" + "---|" * len(methods))
        for name in names:
            kind = next(found[m][name]["kind"] for m in methods if name in found.get(m, {}))
            key = "mae" if kind == "numeric" else "accuracy"
            cells = [f"{found[m][name][key]:.3f}" if name in found.get(m, {}) else "" for m in methods]
            lines.append(f"| {name} | {kind} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def figure(fidelities: list[dict], path: Path) -> None:
    """Per-column shape similarity of the seqdiff samples, one panel per dataset (plotly HTML)."""
    from plotly.subplots import make_subplots

    panels = [f for f in fidelities if f["source"] == "seqdiff-md4"]
    if not panels:
        return
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        subplot_titles=[f"{f['dataset']}: shape {f['shape']:.3f}, trend {f['trend']:.3f}" for f in panels],
    )
    for i, f in enumerate(panels, start=1):
        columns = list(f["shape_by_column"])
        fig.add_bar(x=columns, y=[f["shape_by_column"][c] for c in columns], row=i, col=1, showlegend=False)
        fig.update_yaxes(range=[0, 1], title_text="1 - KS / 1 - TVD", row=i, col=1)
    fig.update_layout(height=320 * len(panels), title="seqdiff synthetic rows: column shape similarity")
    with atomic_path(path) as tmp:
        fig.write_html(tmp, include_plotlyjs="cdn")


def _strict(value: Any) -> Any:
    """NaN (e.g. accuracy with no categorical cell hidden) as null: the output stays standard JSON."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return None if isinstance(value, float) and np.isnan(value) else value


def write(results: list[dict], fidelities: list[dict], args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "settings": {k: v for k, v in vars(args).items()},
        "missforest": MISSFOREST,
        "imputation": results,
        "fidelity": fidelities,
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(_strict(payload), indent=1, allow_nan=False))
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(markdown(results, fidelities, args))
    figure(fidelities, out.with_suffix(".html"))


def redone(args: argparse.Namespace, dataset: str, mechanism: str, method: str) -> bool:
    """Whether this run computes the cell (again)."""
    return dataset in args.datasets and mechanism in args.mechanisms and method in args.methods


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="results JSON (a .md and a .html are written next to it)")
    p.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    p.add_argument("--mechanisms", nargs="+", default=MECHANISMS, choices=MECHANISMS)
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--rows", type=int, default=20_000, help="subsample larger datasets to this many rows")
    p.add_argument("--rate", type=float, default=0.3, help="fraction of cells hidden")
    add_fit_flags(p, defaults=True, prefix="seqdiff: ")
    p.add_argument(
        "--point",
        default="predictive",
        choices=POINT_ESTIMATES,
        help="seqdiff point estimate: predictive distribution (one pass), or the mean / mode of --samples draws",
    )
    p.add_argument(
        "--numeric-point", default="median", choices=NUMERIC_POINTS, help="seqdiff numeric estimate"
    )
    p.add_argument("--dim", type=int, default=FitSettings.dim, help="seqdiff model width")
    p.add_argument("--samples", type=int, default=10, help="seqdiff draws per cell with --point draws")
    p.add_argument("--fidelity-rows", type=int, default=5000, help="synthetic rows for the fidelity scores")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="CPU cores for the methods that use several: seqdiff's torch threads, the MissForest forests' "
        "n_jobs and miceforest's LightGBM threads (default: all)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="keep the cells already in --out and run the rest")
    p.add_argument("--redo", action="store_true", help="with --resume: rerun the cells of --methods")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    results: list[dict] = []
    fidelities: list[dict] = []
    if args.resume and Path(args.out).exists():  # keep finished cells; a long grid survives restarts
        done = json.loads(Path(args.out).read_text())
        results, fidelities = done["imputation"], done["fidelity"]
        if done.get("missforest") != MISSFOREST:  # written before the reference settings
            for r in results:
                r["method"] = "missforest-all-features" if r["method"] == "missforest" else r["method"]
    if args.redo:
        results = [r for r in results if not redone(args, r["dataset"], r["mechanism"], r["method"])]
        fidelities = [f for f in fidelities if not redone(args, f["dataset"], FIDELITY_FIT, "seqdiff-md4")]
    finished = {(r["dataset"], r["mechanism"], r["method"]) for r in results}
    # BLAS stays single-threaded: on these small matrices two threads made MICE over twice as slow.
    # OpenMP is left alone: torch's threads are OpenMP's (limiting every pool gave seqdiff one thread).
    with threadpool_limits(1, user_api="blas"):
        for dataset in args.datasets:
            df = load_complete(dataset, args.rows, args.seed)
            schema = infer_schema(df)
            for mechanism in args.mechanisms:
                mask = make_missing_mask(df, args.rate, mechanism, rng=args.seed, schema=schema)
                holed = df.mask(mask)
                for method in args.methods:
                    if (dataset, mechanism, method) in finished:
                        continue
                    start = time.perf_counter()
                    imputed, imputer = impute(method, holed, schema, args)
                    seconds = time.perf_counter() - start
                    scores = metrics(df, imputed, mask, schema)
                    row = {"dataset": dataset, "mechanism": mechanism, "method": method, "rows": len(df)}
                    row.update({**scores, "seconds": seconds})
                    row["per_column"] = column_metrics(df, imputed, mask, schema)
                    if imputer is not None:
                        row["training"] = imputer.training_
                        row["torch_threads"] = torch.get_num_threads()
                    results.append(row)
                    logging.info("%s", json.dumps({k: v for k, v in row.items() if k != "training"}))
                    if (mechanism, method) == (FIDELITY_FIT, "seqdiff-md4"):
                        n = min(args.fidelity_rows, len(df))
                        real = df.sample(n, random_state=args.seed).reset_index(drop=True)
                        synth = imputer.sample(n, seed=args.seed)
                        for source, rows in [
                            ("seqdiff-md4", synth),
                            ("marginals", independent_marginals(real, args.seed)),
                        ]:
                            f = fidelity(real, rows, schema)
                            fidelities.append({"dataset": dataset, "source": source, "rows": n, **f})
                            logging.info(
                                "fidelity %s %s: shape %.3f trend %.3f",
                                dataset,
                                source,
                                f["shape"],
                                f["trend"],
                            )
                    write(results, fidelities, args)


if __name__ == "__main__":
    main()
