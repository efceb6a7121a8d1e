"""Homologs of a protein family: reading them, aligning them, and weighting them for redundancy.

Accepted inputs (plain or gzipped): A3M (upper case and ``-`` are the match columns, i.e. the
query's positions; lower case and ``.`` are insertions), aligned FASTA (every row the same length,
with ``-``/``.`` gaps; every column kept), unaligned FASTA and Stockholm (the ``#=GC RF`` line, when
present, names the match columns). The format is read from the content: ``# STOCKHOLM`` on the
first line; A3M by the ``.a3m`` name or by rows of different lengths whose upper-case columns agree;
aligned FASTA when rows carry gaps; unaligned FASTA otherwise.

Redundancy weights follow the MSA convention (as in EVcouplings, ColabFold's Neff): each homolog
weighs 1 / (number of homologs, itself included, at least ``identity`` identical to it), where the
identity of two aligned rows is their identical residues over the residue count of the shorter row
(match columns only; gaps never count as identical).

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "family.a3m"
    >>> _ = path.write_text(">query\\nMKTAYIAKQRQISFVKSHFSRQ\\n>b\\nMKSAYIAKQRNISFVKSHFSRQ\\n>c\\nMRTAYIAKQRqqQVSFVKAHFSKQ\\n")
    >>> homologs = read_homologs(path, query="MKTAYIAKQRQISFVKSHFSRQ")
    >>> round(float(sequence_weights(homologs).sum()), 2)  # the effective number of sequences
    1.33
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numba
import numpy as np
import pyfamsa
import pyopal
from Bio import AlignIO

from seqdiff.errors import SeqdiffError
from seqdiff.protein.alphabet import normalize
from seqdiff.protein.io import PathLike, ProteinRecord, iter_fasta_rows, open_text

REDUNDANCY_IDENTITY = 0.8
"""Homologs at least this identical to each other share their weight (the usual Neff threshold)."""

_NUCLEOTIDES = frozenset("ACGTUN")
_NUCLEOTIDE_FRACTION = 0.9  # proteins are about 25% A, C, G, T, N; DNA/RNA is 100%
# BLOSUM tables (FAMSA, Opal) have no selenocysteine or pyrrolysine; align them as their parents.
_BLOSUM_LETTERS = str.maketrans("UO", "CK")


@dataclass(frozen=True)
class Homologs:
    """Distinct homologous sequences, with their alignment when the input was aligned.

    ``sequences`` are upper case without gaps. ``aligned`` holds one row per sequence over the same
    columns (upper case, ``-`` for gaps), or None for unaligned input. ``match_columns`` says the
    columns are the input's match states (A3M query columns or a Stockholm RF line); otherwise
    they are every column of an alignment. ``duplicates_dropped`` counts exact repeats removed.

    Example:
        >>> h = Homologs("x", ("a", "b"), ("MKTAYIAK", "MKTAYLAK"))
        >>> len(h), h.records[1]
        (2, ProteinRecord(id='b', description='', sequence='MKTAYLAK'))
    """

    source: str
    ids: tuple[str, ...]
    sequences: tuple[str, ...]
    aligned: tuple[str, ...] | None = None
    match_columns: bool = False
    duplicates_dropped: int = 0

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def records(self) -> list[ProteinRecord]:
        """The homologs as records, e.g. for ``seqdiff.protein.io.write_fasta`` (training data)."""
        return [ProteinRecord(i, "", s) for i, s in zip(self.ids, self.sequences, strict=True)]

    def halves(self) -> tuple[Homologs, Homologs]:
        """The first row (the query of an A3M) with the rows after it at even places, and with those at
        odd places: two disjoint sets of members, e.g. one to steer designs and one to referee them.

        Example:
            >>> [h.ids for h in Homologs("x", ("q", "a", "b", "c"), ("MK", "MR", "ML", "MV")).halves()]
            [('q', 'b'), ('q', 'a', 'c')]
        """

        def rows(first: int) -> Homologs:
            keep = [0, *range(first, len(self), 2)]
            pick = lambda column: None if column is None else tuple(column[i] for i in keep)  # noqa: E731
            return replace(
                self, ids=pick(self.ids), sequences=pick(self.sequences), aligned=pick(self.aligned)
            )

        return rows(2), rows(1)


def check_protein(sequences: list[str], source: str) -> None:
    """Raise SeqdiffError when ``sequences`` (already validated letters) look like DNA or RNA.

    Example:
        >>> check_protein(["ACGTTGCAACGT"], "reads.fasta")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: reads.fasta: these look like nucleotide sequences (only A, C, G, T/U, N), not protein
    """
    total = sum(map(len, sequences))
    nucleotides = sum(sum(map(seq.count, _NUCLEOTIDES)) for seq in sequences)
    if total and nucleotides >= _NUCLEOTIDE_FRACTION * total:
        raise SeqdiffError(
            f"{source}: these look like nucleotide sequences (only A, C, G, T/U, N), not protein"
        )


def residues_of(row: str, record: str, source: str) -> str:
    """The upper-case residues of an (aligned) row: gaps dropped, letters validated.

    Example:
        >>> residues_of("mk-T.A*", "r1", "x.a3m")
        'MKTA'
        >>> residues_of("MK_A", "r1", "x.a3m")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: x.a3m: record 'r1': '_' is not an amino acid
    """
    ungapped = row.replace("-", "").replace(".", "")
    if "_" in ungapped:
        raise SeqdiffError(f"{source}: record {record!r}: '_' is not an amino acid")
    seq = normalize(ungapped, record=record, source=source)
    if not seq:
        raise SeqdiffError(f"{source}: record {record!r} has no residues")
    return seq


# The A3M's first row is "the input" when, aligned locally, this share of the shorter of the two is
# identical: MSAs are often built for a construct (a domain, a tagged or mutated chain) of the protein.
SAME_PROTEIN_IDENTITY = 0.9


def _same_protein(query: str, first: str) -> bool:
    query = "".join(query.split()).replace("-", "").replace(".", "").removesuffix("*").upper()
    if query in first or first in query:
        return True
    aligner = pyopal.Aligner("BLOSUM62", gap_open=11, gap_extend=1)
    (hit,) = aligner.align(blosum_letters(query), pyopal.Database([blosum_letters(first)]), mode="full")
    return hit.alignment.count("M") >= SAME_PROTEIN_IDENTITY * min(len(query), len(first))


def _read_stockholm(path: Path) -> tuple[list[str], list[str], list[str], bool]:
    """Ids, rows, the rows cut to the RF match columns (all columns without RF), and whether RF cut them."""
    try:
        with open_text(path) as text:
            alignment = AlignIO.read(text, "stockholm")
    except ValueError as err:
        raise SeqdiffError(f"{path}: not a readable Stockholm alignment ({err})") from None
    ids, rows = [r.id for r in alignment], [str(r.seq) for r in alignment]
    reference = alignment.column_annotations.get("reference_annotation")
    if reference is None:
        return ids, rows, [row.upper() for row in rows], False
    keep = [i for i, mark in enumerate(reference) if mark not in ".-~"]
    return ids, rows, ["".join(row[i] for i in keep).upper() for row in rows], True


def _a3m_match_rows(ids: list[str], rows: list[str], path: Path) -> list[str]:
    matches = ["".join(c for c in row if not c.islower() and c != ".") for row in rows]
    for record, row in zip(ids, matches, strict=True):
        if len(row) != len(matches[0]):
            raise SeqdiffError(
                f"{path}: A3M record {record!r} has {len(row)} match columns, the first row {len(matches[0])}"
            )
    return matches


def _aligned_fasta_rows(ids: list[str], rows: list[str], path: Path) -> list[str]:
    for record, row in zip(ids, rows, strict=True):
        if len(row) != len(rows[0]):
            raise SeqdiffError(
                f"{path}: aligned FASTA record {record!r} has {len(row)} columns, the first row {len(rows[0])}"
            )
    return [row.upper().replace(".", "-") for row in rows]


def _sniff_stockholm(path: Path) -> bool:
    with open_text(path) as text:
        for line in text:
            if line.strip():
                return line.startswith("# STOCKHOLM")
    return False


def read_homologs(path: PathLike, query: str | None = None) -> Homologs:
    """Read homologs from A3M, aligned or unaligned FASTA, or Stockholm (gzip allowed).

    Exact duplicate sequences are dropped (the first kept). With ``query``, an A3M file's first row
    must be that sequence (case and gaps ignored): its columns are the query's positions. Bad input
    (no file, no or one distinct sequence, a letter that is not an amino acid, nucleotides,
    ragged alignments, an A3M for another protein) is a one-line SeqdiffError naming the file.

    Example (the A3M insertion ``qq`` is dropped from the aligned row, kept in the sequence):
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "family.a3m"
        >>> _ = path.write_text(">query\\nMKTAYIAKQRQISFVKSHFSRQ\\n>b\\nMKSAYIAKQRNISFVKSHFSRQ\\n>c\\nMRTAYIAKQRqqQVSFVKAHFSKQ\\n")
        >>> homologs = read_homologs(path)
        >>> homologs.aligned[2], homologs.sequences[2]
        ('MRTAYIAKQRQVSFVKAHFSKQ', 'MRTAYIAKQRQQQVSFVKAHFSKQ')
    """
    path = Path(path)
    source = str(path)
    if _sniff_stockholm(path):
        ids, rows, aligned, match_columns = _read_stockholm(path)  # Biopython writes every gap as '-'
        a3m = False
    else:
        entries = [(i, "".join(row.split()).removesuffix("*")) for i, _, row in iter_fasta_rows(path, "#")]
        ids, rows = [e[0] for e in entries], [e[1] for e in entries]
        gapped = any("-" in row or "." in row for row in rows)
        ragged = len({len(row) for row in rows}) > 1
        a3m = path.name.lower().endswith((".a3m", ".a3m.gz")) or (
            gapped and ragged and any(c.islower() for row in rows for c in row)
        )
        match_columns = a3m
        if a3m:
            aligned = _a3m_match_rows(ids, rows, path)
        elif gapped:
            aligned = _aligned_fasta_rows(ids, rows, path)
        else:
            aligned = None
    sequences = [residues_of(row, record, source) for record, row in zip(ids, rows, strict=True)]
    check_protein(sequences, source)
    if query is not None and a3m and not _same_protein(query, sequences[0]):
        raise SeqdiffError(
            f"{source}: the first A3M row ({ids[0]!r}) is not the input protein: this MSA is for another protein"
        )
    return distinct_homologs(source, ids, sequences, aligned, match_columns)


def distinct_homologs(
    source: str,
    ids: list[str],
    sequences: list[str],
    aligned: list[str] | None = None,
    match_columns: bool = False,
) -> Homologs:
    """Homologs without exact duplicate sequences (first kept); fewer than 2 left is a SeqdiffError.

    Example:
        >>> distinct_homologs("x", ["a", "b", "c"], ["MKT", "MKT", "MKV"]).duplicates_dropped
        1
    """
    first: dict[str, int] = {}
    for index, seq in enumerate(sequences):
        first.setdefault(seq, index)
    keep = sorted(first.values())
    if len(keep) < 2:
        what = "only one distinct sequence" if len(sequences) > 1 else "only one sequence"
        raise SeqdiffError(f"{source}: {what}; a family needs at least 2 homologs")
    return Homologs(
        source=source,
        ids=tuple(ids[i] for i in keep),
        sequences=tuple(sequences[i] for i in keep),
        aligned=None if aligned is None else tuple(aligned[i] for i in keep),
        match_columns=match_columns,
        duplicates_dropped=len(sequences) - len(keep),
    )


def blosum_letters(seq: str) -> str:
    """``seq`` with U and O written as C and K, the letters BLOSUM-based aligners know.

    Example:
        >>> blosum_letters("MUOK")
        'MCKK'
    """
    return seq.translate(_BLOSUM_LETTERS)


def align_homologs(homologs: Homologs) -> Homologs:
    """The homologs with an alignment: unchanged when aligned, else aligned with FAMSA (pyfamsa).

    Example:
        >>> align_homologs(Homologs("x", ("a", "b"), ("MMYK", "MYKLP"))).aligned
        ('MMYK--', '-MYKLP')
    """
    if homologs.aligned is not None:
        return homologs
    inputs = [
        pyfamsa.Sequence(str(i).encode(), blosum_letters(seq).encode())
        for i, seq in enumerate(homologs.sequences)
    ]
    rows = {int(row.id): row.sequence.decode() for row in pyfamsa.Aligner(threads=1).align(inputs)}
    aligned = []
    for index, seq in enumerate(homologs.sequences):
        letters = iter(seq)  # put back the original letters (U, O) at the residue positions
        aligned.append("".join(c if c == "-" else next(letters) for c in rows[index]))
    return replace(homologs, aligned=tuple(aligned), match_columns=False)


@numba.njit(cache=True, nogil=True)
def _close_pairs(codes, counts, identity):  # pragma: no cover - compiled
    """Boolean matrix: rows i, j share at least ``identity`` of the shorter row's residues."""
    n, width = codes.shape
    close = np.zeros((n, n), dtype=np.bool_)
    for i in range(n):
        close[i, i] = True
        for j in range(i + 1, n):
            short, other = (i, j) if counts[i] <= counts[j] else (j, i)
            if counts[short] == 0:
                continue
            # Stop as soon as too many of the shorter row's residues are unmatched.
            allowed = counts[short] - np.ceil(identity * counts[short] - 1e-9)
            lost = 0
            for column in range(width):
                residue = codes[short, column]
                if residue != 255 and codes[other, column] != residue:
                    lost += 1
                    if lost > allowed:
                        break
            if lost <= allowed:
                close[i, j] = True
                close[j, i] = True
    return close


def close_pairs(homologs: Homologs, identity: float = REDUNDANCY_IDENTITY) -> np.ndarray:
    """``[n, n]`` booleans: which homologs are at least ``identity`` identical (see the module doc).

    Unaligned homologs are aligned with FAMSA first. Memory grows as n squared (3,500 homologs: 12 MB).

    Example:
        >>> close_pairs(Homologs("x", ("a", "b", "c"), ("MKTAY", "MKTAW", "GGGGG"), ("MKTAY", "MKTAW", "GGGGG")))[0]
        array([ True,  True, False])
    """
    if not 0.0 < identity <= 1.0:
        raise SeqdiffError(f"identity threshold must be in (0, 1], got {identity}")
    rows = align_homologs(homologs).aligned
    codes = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(len(rows), -1)
    codes = np.where(codes == ord("-"), np.uint8(255), codes)  # aligned rows use '-' for every gap
    counts = (codes != 255).sum(axis=1)
    return _close_pairs(codes, counts, float(identity))


def sequence_weights(homologs: Homologs, identity: float = REDUNDANCY_IDENTITY) -> np.ndarray:
    """Each homolog's weight, 1 / (homologs at least ``identity`` identical to it, itself included).

    The sum is the effective number of sequences (Neff).

    Example:
        >>> h = Homologs("x", ("a", "b", "c"), ("MKTAYIAKQR", "MKTAYIAKQW", "GSHPWLNDEC"))
        >>> sequence_weights(h).tolist()
        [0.5, 0.5, 1.0]
    """
    return 1.0 / close_pairs(homologs, identity).sum(axis=1)


def nonredundant(homologs: Homologs, identity: float = 0.9) -> Homologs:
    """A subset in which no two homologs are ``identity`` identical: greedily, in input order, keep
    each homolog that is not that close to one already kept (the query, first in A3M, always stays).

    Example:
        >>> h = Homologs("x", ("a", "b", "c"), ("MKTAYIAKQR", "MKTAYIAKQW", "GSHPWLNDEC"))
        >>> nonredundant(h, identity=0.95).ids
        ('a', 'b', 'c')
        >>> nonredundant(h, identity=0.9).ids
        ('a', 'c')
    """
    aligned = align_homologs(homologs).aligned
    close = close_pairs(replace(homologs, aligned=aligned), identity)
    covered = np.zeros(len(homologs), dtype=bool)
    keep = []
    for index in range(len(homologs)):
        if not covered[index]:
            keep.append(index)
            covered |= close[index]
    return replace(
        homologs,
        ids=tuple(homologs.ids[i] for i in keep),
        sequences=tuple(homologs.sequences[i] for i in keep),
        aligned=None if homologs.aligned is None else tuple(aligned[i] for i in keep),
    )
