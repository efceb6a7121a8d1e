"""The README's main job: design around a fixed motif of ubiquitin, adapted to its family.

Run: ``make demo`` (or ``.venv/bin/python pipelines/demo.py``). It keeps residues 1-20 and 40-50 of
human ubiquitin fixed and designs the other 45 positions four times. The homologs are found in the
20,000-sequence UniProt sample of ``../shared/data`` (jackhmmer); the shipped model is adapted to them
for at most a minute (cached: a second run starts designing at once), the family's profile steers the
designs, and each design is scored against it. It writes ``runs/demo/designs.fasta`` and
``runs/demo/per_position.parquet`` and prints the designs with their family scores. Without
``../shared/data`` it designs with the shipped model alone.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from seqdiff.cli import main
from seqdiff.protein.io import read_sequences

ROOT = Path(__file__).resolve().parent.parent
DATABASE = ROOT.parent / "shared" / "data" / "protein" / "general" / "uniprot_mmseqs2_example_DB20k.fasta.gz"
SCORES = ("scaffold_bits", "scaffold_evalue", "nearest_identity")


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
    if DATABASE.is_file():
        args += ["--homologs-from", str(DATABASE), "--adapt-minutes", "1"]
    else:
        print(f"{DATABASE} not found: designing with the shipped model alone")
    shown = [os.path.relpath(a, ROOT) if a.startswith(str(ROOT.parent)) else a for a in args]
    print("seqdiff " + " ".join(shown))
    code = main(args)
    if code != 0:
        return code
    for record in read_sequences(out / "designs.fasta"):
        fields = dict(part.split("=", 1) for part in record.description.split())
        scores = "  ".join(f"{name}={fields[name]}" for name in SCORES if name in fields)
        print(f"{record.id}  {record.sequence}\n    {scores}")
    print(
        f"wrote {out.relative_to(ROOT)}/designs.fasta and per_position.parquet in {time.time() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run())
