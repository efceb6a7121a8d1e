"""The larger protein training mix: CATH S40 train plus the 20,000 UniProt sequences in ../shared,
less every UniProt sequence similar to a CATH validation or test domain, as shard folders.

Steps:
1. phmmer (pyhmmer, ``--cpus``, default 1) of each CATH valid and test domain against the UniProt set; a UniProt
   sequence with a hit of E-value below ``--evalue`` (default 1e-3) to any of them is dropped, so
   the test split stays unseen (CATH train is already under 40% identical to it by construction).
   Exact duplicates within UniProt are dropped too.
2. ``OUT/uniprot_filtered.fasta`` and ``OUT/filter.json`` (threshold, counts, seconds, dropped ids).
3. ``OUT/train``: CATH train + filtered UniProt; ``OUT/valid``: CATH valid (shard folders for
   ``data.train`` / ``data.valid``). Long sequences are kept whole: training crops a random
   ``max_len`` window of each one every epoch.

``--queries N`` searches with the first N valid and test domains only (a measured subset: the
report says so); ``filter.json`` records how many were searched.

Usage:
    .venv/bin/python pipelines/prepare_protein_mix.py --out runs/protein-mix [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import time
from itertools import chain, islice
from pathlib import Path

import pyhmmer

from seqdiff.atomic import atomic_path
from seqdiff.protein.io import iter_sequences
from seqdiff.protein.model import ProteinAdapter

ROOT = Path(__file__).resolve().parent.parent
GENERAL = ROOT.parent / "shared" / "data" / "protein" / "general"
CATH = {split: GENERAL / f"cath_v4_1_0_S40.{split}.fasta" for split in ("train", "valid", "test")}
UNIPROT = GENERAL / "uniprot_mmseqs2_example_DB20k.fasta.gz"
AMINO = pyhmmer.easel.Alphabet.amino()


def digital(records: list[tuple[str, str]]) -> pyhmmer.easel.DigitalSequenceBlock:
    """(id, sequence) pairs as pyhmmer's digital sequences, named by their position in the list."""
    return pyhmmer.easel.DigitalSequenceBlock(
        AMINO,
        [
            pyhmmer.easel.TextSequence(name=str(i).encode(), sequence=seq).digitize(AMINO)
            for i, (_, seq) in enumerate(records)
        ],
    )


def similar_targets(
    queries: list[tuple[str, str]], targets: list[tuple[str, str]], evalue: float, cpus: int = 1
) -> dict[int, float]:
    """Index of each target with a phmmer hit of E-value below ``evalue`` to any query -> its best
    E-value."""
    found: dict[int, float] = {}
    for hits in pyhmmer.hmmer.phmmer(digital(queries), digital(targets), cpus=cpus, E=evalue):
        for hit in hits:
            if hit.evalue < evalue:
                name = hit.name.decode() if isinstance(hit.name, bytes) else hit.name
                found[int(name)] = min(hit.evalue, found.get(int(name), 1.0))
    return found


def read(path: Path) -> list[tuple[str, str]]:
    return [(r.id, r.sequence) for r in iter_sequences(path)]


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "protein-mix")
    parser.add_argument("--evalue", type=float, default=1e-3, help="drop UniProt hits below this E-value")
    parser.add_argument(
        "--queries", type=int, default=None, help="search with the first N valid+test domains"
    )
    parser.add_argument("--cpus", type=int, default=1, help="threads for phmmer")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    queries = list(islice(chain(read(CATH["valid"]), read(CATH["test"])), args.queries))
    uniprot, seen = [], set()
    for record in read(UNIPROT):
        if record[1] not in seen:
            seen.add(record[1])
            uniprot.append(record)
    start = time.perf_counter()
    similar = similar_targets(queries, uniprot, args.evalue, args.cpus)
    seconds = time.perf_counter() - start
    kept = [record for i, record in enumerate(uniprot) if i not in similar]

    filtered = args.out / "uniprot_filtered.fasta"
    with atomic_path(filtered) as tmp:
        tmp.write_text("".join(f">{name}\n{seq}\n" for name, seq in kept))
    report = {
        "evalue_below": args.evalue,
        "queries_searched": len(queries),
        "queries_total": sum(1 for _ in chain(iter_sequences(CATH["valid"]), iter_sequences(CATH["test"]))),
        "uniprot_sequences": sum(1 for _ in iter_sequences(UNIPROT)),
        "uniprot_unique": len(uniprot),
        "uniprot_dropped_similar": len(similar),
        "uniprot_kept": len(kept),
        "search_seconds": seconds,
        "cpus": args.cpus,
        "dropped": {uniprot[i][0]: e for i, e in sorted(similar.items())},
    }
    with atomic_path(args.out / "filter.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    adapter = ProteinAdapter()
    for split, paths in (("train", [CATH["train"], filtered]), ("valid", [CATH["valid"]])):
        shard = adapter.shard(paths).save(args.out / split)
        print(f"{split}: {shard}", flush=True)
    print(json.dumps({k: v for k, v in report.items() if k != "dropped"}, indent=1))


if __name__ == "__main__":
    run()
