"""MD4 vs GenMD4 on real data: same model, same data, same steps; held-out NELBO and learned rates.

Protein: CATH S40 (train split to train, valid split for early stopping, test split to report).
Table: a shared UCI table encoded one token per cell, fitted by the table imputer on 80% of the rows
(its early stopping holds out 5% of their cells), reported on 20%.

Usage:
    .venv/bin/python pipelines/bench_genmd4.py --out results/genmd4 [--steps 400] [--modality protein table]
Writes ``{out}/genmd4.json`` and ``{out}/genmd4.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seqdiff.core.bundle import load_bundle
from seqdiff.core.diffusion import learned_rates
from seqdiff.core.evaluation import evaluate_nelbo
from seqdiff.protein.model import ProteinAdapter, amino_acid_rates, evaluate_file
from seqdiff.training.config import TrainConfig
from seqdiff.training.train import train

ROOT = Path(__file__).resolve().parent.parent
CATH = ROOT.parent / "shared" / "data" / "protein" / "general"
TABLES = ROOT.parent / "shared" / "data" / "tabular"


def protein_run(schedule: str, steps: int, out: Path, eval_limit: int, reuse: bool = False) -> dict:
    cfg = TrainConfig.from_dict(
        {
            "modality": "protein",
            "data": {
                "train": str(CATH / "cath_v4_1_0_S40.train.fasta"),
                "valid": str(CATH / "cath_v4_1_0_S40.valid.fasta"),
                "max_len": 256,
                "max_tokens": 2048,
            },
            "model": {"dim": 128, "n_layers": 2, "n_heads": 4, "schedule": schedule},
            "optim": {"lr": 2e-3, "warmup_steps": 50, "total_steps": steps, "ema_decay": 0.99},
            "trainer": {"max_steps": steps, "val_every_steps": max(steps // 4, 1), "progress_bar": False},
            "out": str(out / f"protein-{schedule}"),
        }
    )
    started = time.time()
    folder = Path(cfg.out) / "model"
    if not (reuse and folder.is_dir()):  # --reuse: evaluate an earlier run's model again
        folder = train(cfg, ProteinAdapter())
    minutes = (time.time() - started) / 60
    model, _, _ = load_bundle(folder)
    report = evaluate_file(model, CATH / "cath_v4_1_0_S40.test.fasta", passes=4, limit=eval_limit)
    result = {"schedule": schedule, "steps": steps, "train_minutes": round(minutes, 1), **report}
    if model.genmd4:
        result["rates"] = amino_acid_rates(model)
    return result


def table_run(schedule: str, steps: int, dataset: str, rows: int, out: Path) -> dict:
    """Rows split 80/20: the imputer fits on the first part (holding out 5% of its cells for early
    stopping) with the NELBO as its objective, and reports the NELBO of the second; one token per cell."""
    from seqdiff.tabular.files import read_table
    from seqdiff.tabular.imputer import MaskedDiffusionImputer

    table = read_table(TABLES / f"{dataset}.parquet").to_pandas()
    table = table.sample(n=min(rows, len(table)), random_state=0).reset_index(drop=True)
    cut = int(0.8 * len(table))
    imputer = MaskedDiffusionImputer(
        dim=64,
        n_layers=2,
        n_heads=4,
        schedule=schedule,
        loss_weighting="elbo",
        value_frequencies=0,  # the bins alone: the NELBO of one token per cell
        max_steps=steps,
        lr=2e-3,
    )
    started = time.time()
    imputer.fit(table.iloc[:cut])
    minutes = (time.time() - started) / 60
    model, encoder = imputer.model_, imputer.encoder_
    test_x = encoder.encode(table.iloc[cut:])
    batches = [(torch.as_tensor(test_x[i : i + 512]), None) for i in range(0, len(test_x), 512)]
    report = evaluate_nelbo(model, batches, passes=4).to_dict()
    result = {"schedule": schedule, "steps": steps, "train_minutes": round(minutes, 1), **report}
    result["nats_per_row"] = report["nats_per_token"] * test_x.shape[1]
    if model.genmd4:
        result["rates"] = learned_rates(model, dict(enumerate(encoder.token_names)))
    imputer.save(out / f"{dataset}-{schedule}")
    return result


def markdown(results: dict) -> str:
    lines = [
        "| data | schedule | steps | train min | NELBO nats/token (± MC s.e.) | perplexity |",
        "|---|---|---|---|---|---|",
    ]
    for data, runs in results["runs"].items():
        for r in runs:
            lines.append(
                f"| {data} | {r['schedule']} | {r['steps']} | {r['train_minutes']} | "
                f"{r['nats_per_token']:.4f} ± {r['stderr_nats']:.4f} | {r['perplexity']:.3f} |"
            )
    for data, runs in results["runs"].items():
        for r in runs:
            if "rates" in r:
                top = ", ".join(f"{name} {w:.2f}" for name, w in r["rates"][:10])
                low = ", ".join(f"{name} {w:.2f}" for name, w in r["rates"][-5:])
                lines.append(f"\nGenMD4 learned rates, {data} (largest = decided first): {top}; ... {low}")
    return "\n".join(lines) + "\n"


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/genmd4")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--modality", nargs="+", default=["protein", "table"])
    parser.add_argument("--eval-limit", type=int, default=None, help="test sequences (default: all 1,054)")
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--reuse", action="store_true", help="evaluate existing protein runs in --out again")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {
        "command": "pipelines/bench_genmd4.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        "runs": {},
    }
    if "protein" in args.modality:
        results["runs"]["CATH S40 test"] = [
            protein_run(s, args.steps, out, args.eval_limit, args.reuse) for s in ("linear", "genmd4")
        ]
    if "table" in args.modality:
        results["runs"][args.dataset] = [
            table_run(s, args.steps, args.dataset, args.rows, out) for s in ("linear", "genmd4")
        ]
    (out / "genmd4.json").write_text(json.dumps(results, indent=1))
    (out / "genmd4.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    run()
