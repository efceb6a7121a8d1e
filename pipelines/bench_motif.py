"""Motif-scaffolding benchmark: the 25 problems of problems.csv, three systems, 100 designs each.

For every problem, ``--designs`` layouts are drawn from its contig and total-length range
(RFdiffusion style, `plan_from_contig`); the same layouts are filled by three systems:

- ``default``: the shipped model (`seqdiff design`);
- ``finetuned``: the shipped model fine-tuned on the target's homolog MSA
  (``seqdiff train --init default`` on ``family/evodiff_scaffold_msas/{pdb}.a3m.gz``, a few CPU
  minutes; the validation-best EMA weights are used), for the targets that have an MSA;
- ``background``: the motif kept and every other residue drawn independently from the amino-acid
  frequencies of the CATH S40 training split (the naive baseline).

Per problem and system: motif kept exactly and total length in range (fractions, must be 1);
diversity (mean pairwise identity among the designs); novelty (each design's highest identity to
the CATH S40 training split); the default model's NELBO per residue of the designs (one yardstick
for all systems); family-likeness: a profile HMM built by HMMER's ``hmmbuild --hand`` from the
MSA's match columns (A3M upper-case columns), ``hmmsearch`` over the designs, the fraction with a
full-sequence E-value below 1e-3 (``-Z 1``: E-values as for a single-sequence search, so they do
not depend on how many designs are searched). Identity is `pipelines.protein_metrics`' alignment-free
best-diagonal identity (numba); novelty keeps the 50 training domains sharing the most 3-mers
with each design and computes the exact identity on those.

6VW1 has no contig in problems.csv (RFdiffusion scaffolds it in a binder context); EvoDiff
scaffolds its two segments with 50-100 designed residues, which we write as the contig
``0-40,A24-42,10-30,A64-82,0-40`` with total length 88-138.

Needs HMMER (``apt-get install hmmer``; installed when missing and apt-get is available).
Results: ``--out`` (JSON) and the same path with ``.md``; designs as FASTA under ``--work``.

Example (the full run, about 1.5 hours on one CPU core shared with another job):
    .venv/bin/python pipelines/bench_motif.py --out pipelines/results/motif.json --threads 1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipelines.motif_problems import BenchmarkProblem, load_benchmark_problems  # noqa: E402
from pipelines.protein_metrics import (  # noqa: E402
    kmer_profile,
    max_identity_to,
    mean_pairwise_identity,
    residue_frequencies,
)
from seqdiff.atomic import atomic_path  # noqa: E402
from seqdiff.protein.contig import DesignedSegment, parse_contig  # noqa: E402
from seqdiff.protein.design import (  # noqa: E402
    DesignJob,
    design,
    plan_from_contig,
    score_nelbo,
)
from seqdiff.protein.io import ProteinRecord, iter_sequences, open_text, write_fasta  # noqa: E402
from seqdiff.protein.model import load_protein_model  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "protein"
PROBLEMS = DATA / "motif_scaffolding" / "problems.csv"
MSAS = DATA / "family" / "evodiff_scaffold_msas"
TRAIN = DATA / "general" / "cath_v4_1_0_S40.train.fasta"
EXTRA_6VW1 = ("0-40,A24-42,10-30,A64-82,0-40", (88, 138))
FAMILY_EVALUE = 1e-3
SYSTEMS = ["default", "finetuned", "background"]


def problems() -> list[BenchmarkProblem]:
    """The 24 problems with a contig in problems.csv, and 6VW1 with the stated EvoDiff-style contig."""
    listed = load_benchmark_problems(PROBLEMS)
    contig, lengths = EXTRA_6VW1
    vw1 = BenchmarkProblem(
        name="6VW1",
        pdb_path=PROBLEMS.parent / "pdbs" / "6vw1.pdb.gz",
        contig=contig,
        length_range=lengths,
        motif_segments={"A24-42": "QAKTFLDKFNHEAEDLFYQ", "A64-82": "NAGDKWSAFLKEQSTLAQM"},
        numbering="pdb",
    )
    return [*listed, vw1]


def ensure_hmmer() -> None:
    if shutil.which("hmmbuild") and shutil.which("hmmsearch"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "hmmer"], check=True)


def match_columns(a3m: Path) -> list[str]:
    """The MSA's aligned rows restricted to its match columns (A3M: lower-case letters are insertions)."""
    rows, current = [], []
    with open_text(a3m) as handle:
        for line in handle:
            line = line.strip()
            if line.startswith("#") or not line:
                continue
            if line.startswith(">"):
                if current:
                    rows.append("".join(current))
                current = []
            else:
                current.append("".join(c for c in line if not c.islower()).replace(".", ""))
    if current:
        rows.append("".join(current))
    return rows


def aligned_identity(rows: list[str], min_overlap: int = 20) -> float:
    """Mean pairwise identity of MSA rows over the match columns both rows cover (gaps excluded),
    over the pairs that share at least ``min_overlap`` such columns: the family's own diversity.
    The alignment-free identity of the designs would understate it, as members differ by indels.

    Example:
        >>> aligned_identity(["AC-DE", "ACKDF", "AC---"], min_overlap=2)
        0.9166666666666666
    """
    codes = np.array([np.frombuffer(r.encode(), dtype=np.uint8) for r in rows])
    present = codes != ord("-")
    upper = np.triu_indices(len(rows), k=1)
    both = (present[:, None] & present[None]).sum(-1)[upper]
    same = ((codes[:, None] == codes[None]) & present[:, None]).sum(-1)[upper]
    keep = both >= min_overlap
    return float((same[keep] / both[keep]).mean()) if keep.any() else float("nan")


def build_hmm(a3m: Path, out: Path) -> Path:
    """``hmmbuild --hand`` on a Stockholm file of the match columns (every column a match state)."""
    rows = match_columns(a3m)
    sto = out.with_suffix(".sto")
    width = len(rows[0])
    lines = ["# STOCKHOLM 1.0"]
    lines += [f"s{i} {row}" for i, row in enumerate(rows) if len(row) == width]
    lines += ["#=GC RF " + "x" * width, "//"]
    sto.write_text("\n".join(lines) + "\n")
    subprocess.run(["hmmbuild", "--hand", "--amino", str(out), str(sto)], check=True, capture_output=True)
    return out


def family_evalues(hmm: Path, fasta: Path) -> dict[str, float]:
    """Full-sequence E-value of every sequence in ``fasta`` that hmmsearch reports (others: no hit)."""
    table = fasta.with_suffix(".tbl")
    subprocess.run(
        ["hmmsearch", "--noali", "-Z", "1", "-E", "1000", "--tblout", str(table), str(hmm), str(fasta)],
        check=True,
        capture_output=True,
    )
    evalues = {}
    for line in table.read_text().splitlines():
        if not line.startswith("#"):
            fields = line.split()
            evalues[fields[0]] = float(fields[4])
    return evalues


def finetune(pdb: str, args: argparse.Namespace) -> Path:
    """``seqdiff train --init default`` on the target's MSA; returns the exported model folder."""
    out = Path(args.work) / f"finetune-{pdb}"
    model, finished = out / "model", out / "finished"
    if finished.exists() and not args.retrain:  # not just model/: an interrupted run exports one too
        return model
    config = {
        "modality": "protein",
        "data": {"train": str(MSAS / f"{pdb}.a3m.gz"), "max_len": 512, "max_tokens": 4096},
        "optim": {"lr": args.finetune_lr, "warmup_steps": 10, "total_steps": args.finetune_steps},
        "trainer": {
            "max_steps": args.finetune_steps,
            "max_minutes": args.finetune_minutes,
            "val_every_steps": 25,
            "checkpoint_every_steps": 10_000,
            "threads": args.threads,
            "seed": args.seed,
            "progress_bar": False,
        },
        "out": str(out),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "finetune.yaml").write_text(yaml.safe_dump(config))
    seqdiff = Path(sys.executable).parent / "seqdiff"
    subprocess.run(
        [str(seqdiff), "train", "--config", str(out / "finetune.yaml"), "--init", "default"],
        check=True,
        capture_output=True,
    )
    finished.touch()
    return model


def background_designs(jobs: list[DesignJob], freqs: dict[str, float], seed: int) -> list[str]:
    """The naive baseline: every ``_`` drawn independently from ``freqs``."""
    rng = np.random.default_rng(seed)
    letters = np.array(list(freqs))
    p = np.array(list(freqs.values()))
    out = []
    for job in jobs:
        chars = np.array(list(job.template))
        blank = chars == "_"
        chars[blank] = rng.choice(letters, size=int(blank.sum()), p=p)
        out.append("".join(chars))
    return out


def contig_length_range(problem: BenchmarkProblem) -> tuple[int, int]:
    """The total lengths a contig allows by itself (used when the problem gives no range)."""
    motif = sum(len(v) for v in problem.motif_segments.values())
    designed = [s for s in parse_contig(problem.contig) if isinstance(s, DesignedSegment)]
    return motif + sum(s.min_len for s in designed), motif + sum(s.max_len for s in designed)


def scaffold_only(job: DesignJob, sequence: str) -> str:
    """The design with its fixed (motif) residues replaced by X, so an HMM hit must come from the scaffold."""
    return "".join("X" if t != "_" else c for t, c in zip(job.template, sequence, strict=True))


def motif_kept(job: DesignJob, sequence: str, problem: BenchmarkProblem) -> bool:
    return all(
        sequence[start : start + len(problem.motif_segments[name])] == problem.motif_segments[name]
        for name, start in job.motifs
    ) and all(a == b for a, b in zip(job.template, sequence, strict=True) if a != "_")


def evaluate(
    problem: BenchmarkProblem,
    system: str,
    jobs: list[DesignJob],
    sequences: list[str],
    context: dict,
    args: argparse.Namespace,
    nelbo_default: float | None = None,
) -> dict:
    lo, hi = problem.length_range or contig_length_range(problem)
    fasta = Path(args.work) / "designs" / f"{problem.name}.{system}.fasta"
    fasta.parent.mkdir(parents=True, exist_ok=True)
    write_fasta(
        [
            ProteinRecord(f"{problem.name}_{system}_{j.index}", f"contig={j.contig}", s)
            for j, s in zip(jobs, sequences, strict=True)
        ],
        fasta,
    )
    novelty, _ = max_identity_to(
        sequences, context["train"], candidates=50, database_profile=context["train_profile"]
    )
    row = {
        "problem": problem.name,
        "system": system,
        "designs": len(sequences),
        "motif_kept": float(
            np.mean([motif_kept(j, s, problem) for j, s in zip(jobs, sequences, strict=True)])
        ),
        "length_in_range": float(np.mean([lo <= len(s) <= hi for s in sequences])),
        "mean_length": float(np.mean([len(s) for s in sequences])),
        "diversity_identity": mean_pairwise_identity(sequences),
        "novelty_identity_mean": float(novelty.mean()),
        "novelty_identity_max": float(novelty.max()),
        "nelbo_default": nelbo_default
        if nelbo_default is not None
        else float(np.mean(score_nelbo(context["model"], sequences, seed=args.seed))),
    }
    pdb = problem.pdb_path.name.split(".")[0]
    if pdb in context["hmms"]:
        evalues = family_evalues(context["hmms"][pdb], fasta)
        hits = [evalues.get(f"{problem.name}_{system}_{j.index}", np.inf) < FAMILY_EVALUE for j in jobs]
        row["family_fraction"] = float(np.mean(hits))
        masked = fasta.with_suffix(".scaffold.fasta")
        write_fasta(
            [
                ProteinRecord(f"{problem.name}_{system}_{j.index}", "motif as X", scaffold_only(j, s))
                for j, s in zip(jobs, sequences, strict=True)
            ],
            masked,
        )
        evalues = family_evalues(context["hmms"][pdb], masked)
        hits = [evalues.get(f"{problem.name}_{system}_{j.index}", np.inf) < FAMILY_EVALUE for j in jobs]
        row["family_scaffold_fraction"] = float(np.mean(hits))
        msa = context["msa_sequences"][pdb]
        near, _ = max_identity_to(sequences, msa, candidates=50)
        row["msa_identity_mean"] = float(near.mean())
    return row


def markdown(rows: list[dict], summary: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Motif-scaffolding benchmark",
        "",
        f"{args.designs} designs per problem and system; sampler: {args.steps} steps, cosine grid, "
        f"temperature {args.temperature:g}, top-p {args.top_p:g} (model systems), seed {args.seed}. "
        f"Fine-tuning: at most {args.finetune_steps} steps or "
        f"{args.finetune_minutes} min at lr {args.finetune_lr}. Identity: best-diagonal ungapped "
        "identity / shorter length. family = fraction with hmmsearch E < 1e-3 (-Z 1).",
        "",
        "## Summary (mean over problems)",
        "",
        "| system | problems | motif kept | length in range | diversity (identity) | novelty (max id. to CATH train) | NELBO (default model) | family (E<1e-3) | family, motif masked | problems with MSA |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['system']} | {s['problems']} | {s['motif_kept']:.3f} | {s['length_in_range']:.3f} | "
            f"{s['diversity_identity']:.3f} | {s['novelty_identity_mean']:.3f} | {s['nelbo_default']:.3f} | "
            f"{s['family_fraction']:.3f} | {s['family_scaffold_fraction']:.3f} | {s['family_problems']} |"
        )
    lines += [
        "",
        "## Per problem",
        "",
        "| problem | system | mean length | motif kept | length ok | diversity | novelty | NELBO | family | family, motif masked | identity to MSA |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        family = f"{r['family_fraction']:.2f}" if "family_fraction" in r else "-"
        scaffold = f"{r['family_scaffold_fraction']:.2f}" if "family_scaffold_fraction" in r else "-"
        msa = f"{r['msa_identity_mean']:.3f}" if "msa_identity_mean" in r else "-"
        lines.append(
            f"| {r['problem']} | {r['system']} | {r['mean_length']:.0f} | {r['motif_kept']:.2f} | "
            f"{r['length_in_range']:.2f} | {r['diversity_identity']:.3f} | {r['novelty_identity_mean']:.3f} | "
            f"{r['nelbo_default']:.3f} | {family} | {scaffold} | {msa} |"
        )
    return "\n".join(lines) + "\n"


def summarise(rows: list[dict]) -> list[dict]:
    """Per system, the mean over problems; family-likeness over the problems that have an MSA and
    were run by every system (so that the three systems are compared on the same problems)."""
    with_msa = {r["problem"] for r in rows if r["system"] == "finetuned"}
    out = []
    for system in SYSTEMS:
        mine = [r for r in rows if r["system"] == system]
        if not mine:
            continue
        family = [r for r in mine if r["problem"] in with_msa and "family_fraction" in r]
        out.append(
            {
                "system": system,
                "problems": len(mine),
                **{
                    k: float(np.mean([r[k] for r in mine]))
                    for k in (
                        "motif_kept",
                        "length_in_range",
                        "diversity_identity",
                        "novelty_identity_mean",
                        "nelbo_default",
                    )
                },
                **{
                    k: float(np.mean([r[k] for r in family])) if family else float("nan")
                    for k in ("family_fraction", "family_scaffold_fraction")
                },
                "family_problems": len(family),
            }
        )
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="results JSON (a .md is written next to it)")
    p.add_argument("--work", default="runs/motif-bench", help="fine-tuned models, HMMs and design FASTAs")
    p.add_argument("--problems", nargs="+", help="only these problems (names as in problems.csv)")
    p.add_argument("--systems", nargs="+", default=SYSTEMS, choices=SYSTEMS)
    p.add_argument("--designs", type=int, default=100)
    p.add_argument("--steps", type=int, default=25, help="sampler steps")
    p.add_argument("--temperature", type=float, default=1.0, help="sampler temperature (model systems)")
    p.add_argument("--top-p", type=float, default=1.0, help="sampler nucleus (model systems)")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--finetune-steps", type=int, default=80)
    p.add_argument("--finetune-minutes", type=float, default=2.0)
    p.add_argument("--finetune-lr", type=float, default=1e-3)
    p.add_argument("--retrain", action="store_true", help="fine-tune again even if a model exists in --work")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="keep the rows already in --out")
    p.add_argument("--controls", type=int, default=50, help="MSA members per family for the positive control")
    p.add_argument(
        "--merge",
        nargs="+",
        default=[],
        help="results JSONs of other runs (e.g. other --problems) to include",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ensure_hmmer()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    train = [r.sequence for r in iter_sequences(TRAIN)]
    model, _ = load_protein_model(None, torch.device("cpu"))
    context = {
        "train": train,
        "train_profile": kmer_profile(train),
        "model": model.eval(),
        "hmms": {},
        "msa_sequences": {},
    }
    freqs = residue_frequencies(train)
    rows: list[dict] = []
    out = Path(args.out)
    if args.resume and out.exists():
        rows = json.loads(out.read_text())["rows"]
    done = {(r["problem"], r["system"]) for r in rows}
    for other in args.merge:
        for r in json.loads(Path(other).read_text())["rows"]:
            if (r["problem"], r["system"]) not in done:
                rows.append(r)
                done.add((r["problem"], r["system"]))
    selected = [q for q in problems() if not args.problems or q.name in args.problems]
    for problem in selected:
        pdb = problem.pdb_path.name.split(".")[0]
        msa = MSAS / f"{pdb}.a3m.gz"
        if msa.exists() and pdb not in context["hmms"]:
            context["hmms"][pdb] = build_hmm(msa, work / f"{pdb}.hmm")
            context["msa_sequences"][pdb] = [r.sequence for r in iter_sequences(msa)]
        jobs = plan_from_contig(
            problem.contig,
            problem.pdb_path,
            problem.length_range,
            n=args.designs,
            seed=args.seed,
            numbering=problem.numbering,
            source_name=problem.name,
        )
        for system in args.systems:
            if (problem.name, system) in done or (system == "finetuned" and not msa.exists()):
                continue
            start = time.perf_counter()
            if system == "background":
                sequences = background_designs(jobs, freqs, args.seed)
                extra = {}
            else:
                checkpoint = None
                extra = {}
                if system == "finetuned":
                    tuned = time.perf_counter()
                    checkpoint = str(finetune(pdb, args))
                    extra["finetune_seconds"] = time.perf_counter() - tuned
                designs = design(
                    jobs,
                    model=model if checkpoint is None else None,
                    checkpoint=checkpoint,
                    steps=args.steps,
                    temperature=args.temperature,
                    top_p=args.top_p,
                    seed=args.seed,
                    batch_size=args.batch_size,
                    device="cpu",
                )
                sequences = [d.sequence for d in designs]
                extra.update(temperature=args.temperature, top_p=args.top_p)
                extra["nelbo_own_model"] = float(np.mean([d.nelbo_per_residue for d in designs]))
                extra["mean_confidence"] = float(np.nanmean([d.mean_confidence for d in designs]))
            # The default system's designs were already scored by the default model (same seed: same value).
            nelbo = extra.get("nelbo_own_model") if system == "default" else None
            row = evaluate(problem, system, jobs, sequences, context, args, nelbo)
            row.update(extra)
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            logging.info("%s", json.dumps(row))
            write_results(out, rows, args)
    controls = member_controls(work, context, args.controls, args.seed) if args.controls else None
    write_results(out, rows, args, controls)


def member_controls(work: Path, context: dict, n: int, seed: int) -> dict[str, dict[str, float]]:
    """Positive control of the family test: per MSA, the fraction of `n` random members (whole
    sequences) that hmmsearch recognises at E < 1e-3, and the members' own diversity
    (`aligned_identity`): how varied the family itself is. Reuses the HMMs and members already loaded."""
    rng = np.random.default_rng(seed)
    out = {}
    for msa in sorted(MSAS.glob("*.a3m.gz")):
        pdb = msa.name.split(".")[0]
        if pdb not in context["hmms"]:
            context["hmms"][pdb] = build_hmm(msa, work / f"{pdb}.hmm")
            context["msa_sequences"][pdb] = [r.sequence for r in iter_sequences(msa)]
        hmm, members = context["hmms"][pdb], context["msa_sequences"][pdb]
        rows = match_columns(msa)
        picks = rng.choice(len(members), min(n, len(members)), replace=False)
        fasta = work / "designs" / f"{pdb}.members.fasta"
        fasta.parent.mkdir(parents=True, exist_ok=True)
        write_fasta([ProteinRecord(f"m{i}", "", members[i]) for i in picks], fasta)
        evalues = family_evalues(hmm, fasta)
        out[pdb] = {
            "recognised": float(np.mean([evalues.get(f"m{i}", np.inf) < FAMILY_EVALUE for i in picks])),
            "diversity_identity": aligned_identity([rows[i] for i in picks]),
        }
    return out


def write_results(
    out: Path, rows: list[dict], args: argparse.Namespace, controls: dict[str, dict[str, float]] | None = None
) -> None:
    """The JSON (settings, rows in problems.csv order, summary) and its markdown, atomically."""
    order = {q.name: i for i, q in enumerate(problems())}
    rows = sorted(rows, key=lambda r: (order.get(r["problem"], len(order)), SYSTEMS.index(r["system"])))
    payload = {"settings": vars(args), "rows": rows, "summary": summarise(rows)}
    if controls:
        payload["member_controls"] = controls
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(payload, indent=1))
    with atomic_path(out.with_suffix(".md")) as tmp:
        text = markdown(rows, payload["summary"], args)
        if controls:
            text += (
                "\n## Positive control: MSA members recognised (E < 1e-3), and their own diversity\n\n"
                "| MSA | fraction recognised | diversity (identity) |\n|---|---|---|\n"
            )
            text += "".join(
                f"| {pdb} | {c['recognised']:.2f} | {c['diversity_identity']:.3f} |\n"
                for pdb, c in controls.items()
            )
        tmp.write_text(text)


if __name__ == "__main__":
    main()
