"""Train (or continue training) the shipped default protein model, evaluate it, write its card.

Steps, each rerunnable:
1. ``seqdiff train --config pipelines/configs/protein_default.yaml`` (skipped with --skip-train);
   pass ``--init default`` to continue from the shipped weights in a later session.
2. Evaluate the best EMA weights on the CATH S40 test split (NELBO, perplexity, MC standard
   error) next to the unigram baseline (amino-acid frequencies of the training split).
3. Copy the bundle into ``seqdiff/models/protein-default/`` with the evaluation in config.json
   and a model card (README.md).

Usage:
    .venv/bin/python pipelines/train_protein_default.py [--skip-train] [--init default] [--passes 4]
        [--config pipelines/configs/protein_default_gpu.yaml]   # the larger model, on a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import time
from datetime import date
from itertools import islice
from pathlib import Path

import torch

from pipelines.protein_metrics import residue_frequencies
from seqdiff.cli import main as seqdiff
from seqdiff.core.bundle import CONFIG, WEIGHTS, load_bundle
from seqdiff.core.device import resolve_device
from seqdiff.protein.io import iter_sequences
from seqdiff.protein.model import default_model_path, evaluate_file
from seqdiff.training.config import TrainConfig
from seqdiff.training.train import training_history

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = ROOT / "pipelines" / "configs" / "protein_default.yaml"


def unigram_perplexity(train_path: str, test_path: str, limit: int | None = None) -> float:
    """Perplexity on the test split (its first ``limit`` sequences) of the amino-acid frequencies
    of the training split. Standard residues only, as in the model's NELBO (non-standard letters
    are missing data).
    """
    freqs = residue_frequencies(r.sequence for r in iter_sequences(train_path))
    nll, n = 0.0, 0
    for record in islice(iter_sequences(test_path), limit):
        for c in record.sequence:
            if c in freqs:
                nll -= math.log(freqs[c])
                n += 1
    return math.exp(nll / n)


def threads_label(threads: int | None) -> str:
    return "all cores" if not threads else f"{threads} thread{'s' if threads > 1 else ''}"


def hardware(run: dict) -> str:
    """Where a training run ran, from its record (runs before devices were recorded used the CPU)."""
    if run.get("accelerator", "cpu") == "cpu":
        return f"the 2-core CPU ({threads_label(run['config']['trainer'].get('threads'))}, shared with other work)"
    count = run.get("devices", 1)
    return f"{count} GPU{'s' if count > 1 else ''}"


def model_card(extra: dict, evaluation: dict, n_params: int) -> str:
    training = extra.get("training", {})
    cfg = training.get("config", {})
    model_cfg = cfg.get("model", {})
    ev = evaluation
    runs = training_history(training)
    steps = " + ".join(f"{r['step']:,}" for r in runs)
    if len(runs) > 1:
        steps = f"{sum(r['step'] for r in runs):,} ({steps} in {len(runs)} runs, each continuing the last)"
    tokens = sum(r.get("tokens_seen", 0) for r in runs)
    compute = " + ".join(f"{r.get('wall_minutes_this_run', 0):.0f} min on {hardware(r)}" for r in runs)
    return f"""# seqdiff protein-default

A masked-diffusion (MD4, {model_cfg.get("schedule", "linear")} schedule) protein sequence model over the
ESM-1b 33-token alphabet; it outputs the 20 standard amino acids.

| | |
|---|---|
| architecture | bidirectional transformer, {model_cfg.get("n_layers")} layers, width {model_cfg.get("dim")}, {model_cfg.get("n_heads")} heads, RoPE, SwiGLU, no time conditioning |
| parameters | {n_params:,} |
| training data | CATH v4.1.0 S40 train split (18,982 domains; `../shared/data/protein/general/cath_v4_1_0_S40.train.fasta`), random crops of at most {cfg.get("data", {}).get("max_len")} residues; valid split for early stopping. No UniProt data. |
| steps | {steps} optimizer steps of about {cfg.get("data", {}).get("max_tokens")} padded tokens ({tokens:,} real tokens) |
| compute | {compute} |
| initialised from | {runs[0].get("init") or "scratch"} |

## Held-out numbers (CATH S40 test split: 1,054 domains, < 40% identity to training)

| model | NELBO (nats/residue) | perplexity (upper bound) |
|---|---|---|
| this model | {ev["nats_per_token"]:.4f} ± {ev["stderr_nats"]:.4f} | {ev["perplexity"]:.2f} (95% MC interval {ev["perplexity_ci95"][0]:.2f}-{ev["perplexity_ci95"][1]:.2f}) |
| unigram (training-split frequencies) | {math.log(ev["unigram_perplexity"]):.4f} | {ev["unigram_perplexity"]:.2f} |

{ev["passes"]} Monte-Carlo passes over {ev["sequences"]} sequences ({ev["tokens"]:,} standard residues; sequences
longer than {cfg.get("data", {}).get("max_len")} cut, {ev["truncated_sequences"]} of them). Evaluated {ev["date"]} on
{ev["machine"]} with `.venv/bin/python pipelines/train_protein_default.py --skip-train`.
BENCHMARKS.md compares masked diffusion with the same-size autoregressive baseline at equal compute.

## Use

    seqdiff design --fix 1-20,40-50 data/examples/ubiquitin.fasta -n 4

Small and trained on little compute: treat designs as a starting point. Continue training with
`pipelines/train_protein_default.py --init default` (see the README).
"""


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=CONFIG_PATH, help="training config (default: the CPU one)")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--init", help="continue from a model ('default' or a folder)")
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], help="config overrides for training")
    args = parser.parse_args()
    cfg = TrainConfig.load(args.config, args.set)
    run_model = ROOT / cfg.out / "model"
    if not args.skip_train:
        argv = ["train", "--config", str(args.config)]
        for item in args.set:
            argv += ["--set", item]
        if args.init:
            argv += ["--init", args.init]
        if seqdiff(argv) != 0:
            raise SystemExit(1)
    device = resolve_device("auto")
    model, _, extra = load_bundle(run_model, device)
    torch.set_num_threads(cfg.trainer.threads or torch.get_num_threads())
    test = cfg.data.train.replace(".train.", ".test.")
    started = time.time()
    evaluation = evaluate_file(model, test, passes=args.passes)
    evaluation["unigram_perplexity"] = unigram_perplexity(cfg.data.train, test)
    evaluation["date"] = date.today().isoformat()
    evaluation["machine"] = (
        f"{platform.machine()}, {threads_label(torch.get_num_threads())}, torch {torch.__version__}"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")
    )
    evaluation["eval_seconds"] = round(time.time() - started, 1)
    target = default_model_path()
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_model / WEIGHTS, target / WEIGHTS)
    config = json.loads((run_model / CONFIG).read_text())
    config["evaluation"] = {"cath_s40_test": evaluation}
    (target / CONFIG).write_text(json.dumps(config, indent=1))
    n_params = sum(p.numel() for p in model.denoiser.parameters())
    (target / "README.md").write_text(model_card(extra, evaluation, n_params))
    print(json.dumps(evaluation, indent=1))


if __name__ == "__main__":
    run()
