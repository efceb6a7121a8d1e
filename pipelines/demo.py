"""The README's main job: design around a fixed motif of ubiquitin with the shipped default model.

Run: ``make demo`` (or ``.venv/bin/python pipelines/demo.py``). It keeps residues 1-20 and 40-50 of
human ubiquitin fixed, designs the other 45 positions four times, and writes
``runs/demo/designs.fasta`` and ``runs/demo/per_position.parquet``; the designs are also printed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from seqdiff.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run() -> int:
    out = ROOT / "runs" / "demo"
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    args = [
        "design",
        str(ROOT / "data" / "examples" / "ubiquitin.fasta"),
        "--fix", "1-20,40-50",
        "-n", "4",
        "--steps", "50",
        "--seed", "0",
        "-o", str(out / "designs.fasta"),
        "--per-position", str(out / "per_position.parquet"),
    ]  # fmt: skip
    print("seqdiff " + " ".join(args[:1] + [Path(args[1]).relative_to(ROOT).as_posix()] + args[2:8]))
    code = main(args)
    if code == 0:
        print((out / "designs.fasta").read_text(), end="")
        print(
            f"wrote {out.relative_to(ROOT)}/designs.fasta and per_position.parquet in {time.time() - start:.1f} s"
        )
    return code


if __name__ == "__main__":
    sys.exit(run())
