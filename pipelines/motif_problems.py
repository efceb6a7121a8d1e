"""The motif-scaffolding benchmark's problem table (``../shared/data/protein/motif_scaffolding/problems.csv``)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from seqdiff.errors import SeqdiffError
from seqdiff.protein.contig import Numbering
from seqdiff.protein.io import PathLike, open_text
from seqdiff.protein.positions import parse_length_range


@dataclass(frozen=True)
class BenchmarkProblem:
    """One motif-scaffolding benchmark problem from ``problems.csv``.

    ``motif_segments`` maps each motif name (as in the contig) to its expected sequence.
    """

    name: str
    pdb_path: Path
    contig: str
    length_range: tuple[int, int] | None
    motif_segments: dict[str, str]
    numbering: Numbering


def load_benchmark_problems(csv_path: PathLike) -> list[BenchmarkProblem]:
    """Read the motif-scaffolding problems (rows without a contig, i.e. 6VW1, are skipped).

    The PDB file of a problem is ``pdbs/{pdb}.pdb.gz`` next to the CSV. An empty ``total_length``
    means the contig's own range. The CSV has no numbering column: a problem uses sequential
    numbering when its ``notes`` say the benchmark means "sequential positions" of the chain (6EXZ),
    and PDB numbering otherwise.

    Example:
        >>> problems = load_benchmark_problems("motif_scaffolding/problems.csv")  # doctest: +SKIP
        >>> problems[0].name, problems[0].motif_segments["A16-35"]  # doctest: +SKIP
        ('1PRW', 'FSLFDKDGDGTITTKELGTV')
    """
    csv_path = Path(csv_path)
    with open_text(csv_path) as handle:
        rows = list(csv.DictReader(handle, restval=""))
    needed = {"problem", "pdb", "contig", "total_length", "motif_segments", "notes"}
    missing = needed - set(rows[0] if rows else ())
    if missing:
        raise SeqdiffError(f"{csv_path}: missing columns {', '.join(sorted(missing))}")
    problems = []
    for row in rows:
        if not row["contig"].strip():
            continue
        try:
            motif_segments = dict(item.split(":") for item in row["motif_segments"].split(";"))
        except ValueError:
            raise SeqdiffError(
                f"{csv_path}: problem {row['problem']!r}: motif_segments {row['motif_segments']!r} "
                "is not like 'A16-35:FSLF...;A52-71:INEV...'"
            ) from None
        problems.append(
            BenchmarkProblem(
                name=row["problem"],
                pdb_path=csv_path.parent / "pdbs" / f"{row['pdb'].lower()}.pdb.gz",
                contig=row["contig"],
                length_range=parse_length_range(row["total_length"]) if row["total_length"].strip() else None,
                motif_segments=motif_segments,
                numbering="sequential" if "sequential positions" in row["notes"] else "pdb",
            )
        )
    return problems
