"""RFdiffusion contigs (``5-20,A16-35,10-25``): parsing, motif sources, and layouts of designs.

A contig is a list of segments separated by ``,`` (or ``/``, RFdiffusion's own separator): a motif
``A16-35`` keeps residues 16..35 of chain A of a motif source (PDB or FASTA file), and a designed
segment ``10-25`` (or ``20``) inserts that many residues to design. :func:`sample_layout` draws the
designed lengths and lays the motif letters out in a template with ``_`` at the designed positions.

Example:
    >>> segments = parse_contig("2-4,A16-18,3")
    >>> layout = sample_layout(segments, ["FSL"], (9, 9), np.random.default_rng(0))
    >>> layout.template, layout.motifs, layout.contig
    ('___FSL___', (('A16-18', 3),), '3,A16-18,3')
"""

from __future__ import annotations

import io
import re
import string
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from Bio import SeqIO
from Bio.Data.PDBData import protein_letters_3to1_extended
from Bio.PDB import PDBParser
from Bio.PDB.Polypeptide import is_aa

from seqdiff.errors import SeqdiffError
from seqdiff.protein.io import PathLike, open_text, read_sequences
from seqdiff.protein.positions import format_ranges, parse_span

Numbering = Literal["pdb", "sequential"]

_MOTIF = re.compile(r"([A-Za-z])([0-9]{1,9})([A-Za-z]?)(?:-([0-9]{1,9})([A-Za-z]?))?")
_PDB_SUFFIXES = (".pdb", ".ent")
_FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas")
# Rejection sampling of designed lengths: candidates drawn per batch, and batches before giving up.
_SAMPLE_BATCH = 4096
_SAMPLE_BATCHES = 64


@dataclass(frozen=True)
class MotifSegment:
    """Residues ``start``..``end`` (PDB numbering, inclusive, with optional insertion codes) of ``chain``.

    Example:
        >>> MotifSegment("A", 16, 35, start_icode="A").name
        'A16A-35'
    """

    chain: str
    start: int
    end: int
    start_icode: str = ""
    end_icode: str = ""

    @property
    def name(self) -> str:
        return f"{self.chain}{self.start}{self.start_icode}-{self.end}{self.end_icode}"


@dataclass(frozen=True)
class DesignedSegment:
    """A stretch of ``min_len``..``max_len`` residues to design.

    Example:
        >>> DesignedSegment(10, 25).name, DesignedSegment(20, 20).name
        ('10-25', '20')
    """

    min_len: int
    max_len: int

    @property
    def name(self) -> str:
        return str(self.min_len) if self.min_len == self.max_len else f"{self.min_len}-{self.max_len}"


Segment = MotifSegment | DesignedSegment


def _parse_segment(piece: str, context: str) -> Segment:
    if any(ch.isspace() for ch in piece):
        raise SeqdiffError(
            f"{context}: segment {piece!r}: several chains (RFdiffusion's '/0 ' chain break) "
            "are not supported; seqdiff designs one chain"
        )
    if piece[0].isalpha():
        match = _MOTIF.fullmatch(piece)
        if match is None:
            raise SeqdiffError(
                f"{context}: segment {piece!r}: expected a motif like 'A16-35' or a length like '10-25'"
            )
        chain, start, start_icode, end, end_icode = match.groups()
        if end is None:
            end, end_icode = start, start_icode
        if (int(start), start_icode) > (int(end), end_icode):
            raise SeqdiffError(f"{context}: segment {piece!r} is reversed (start after end)")
        return MotifSegment(chain, int(start), int(end), start_icode, end_icode)
    min_len, max_len = parse_span(piece, f"{context}: segment ")
    if min_len < 0:
        raise SeqdiffError(f"{context}: segment {piece!r}: lengths cannot be negative")
    if max_len == 0:
        raise SeqdiffError(
            f"{context}: segment {piece!r}: a designed segment of length 0 "
            "(RFdiffusion's '/0' chain break) is not supported; seqdiff designs one chain"
        )
    return DesignedSegment(min_len, max_len)


def parse_contig(text: str) -> list[Segment]:
    """Parse an RFdiffusion contig: segments separated by ``,`` or ``/``, optionally in ``[...]``.

    Example:
        >>> parse_contig("5-20,A16-35,20")
        [DesignedSegment(min_len=5, max_len=20), MotifSegment(chain='A', start=16, end=35, start_icode='', end_icode=''), DesignedSegment(min_len=20, max_len=20)]
    """
    context = f"contig {text!r}"
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1].strip()
    if not body:
        raise SeqdiffError(f"{context}: empty; expected segments like '5-20,A16-35,10-25'")
    segments = []
    for piece in re.split(r"[,/]", body):
        if not piece.strip():
            raise SeqdiffError(f"{context}: empty segment (a stray ',' or '/')")
        segments.append(_parse_segment(piece.strip(), context))
    return segments


def format_contig(segments: list[Segment]) -> str:
    """The contig string of segments, the inverse of :func:`parse_contig`.

    Example:
        >>> format_contig(parse_contig("5-20/A16-35/20"))
        '5-20,A16-35,20'
    """
    return ",".join(segment.name for segment in segments)


class Residue(NamedTuple):
    """One residue of a motif source: number and insertion code as in the file, and its letter."""

    number: int
    icode: str
    aa: str


@dataclass(frozen=True)
class MotifSource:
    """The residues of a structure or sequence file, by chain.

    ``chains`` holds the residues present (for a PDB file: the observed polymer residues of the first
    model, PDB numbering); ``seqres`` holds each chain's full sequence (SEQRES records for a PDB
    file), which ``numbering="sequential"`` counts in.
    """

    path: Path
    chains: dict[str, list[Residue]]
    seqres: dict[str, str]


def _load_pdb(path: Path) -> MotifSource:
    with open_text(path) as handle:
        text = handle.read()
    try:
        structure = PDBParser(QUIET=True).get_structure(path.name, io.StringIO(text))
        seqres = {
            rec.annotations["chain"]: str(rec.seq) for rec in SeqIO.parse(io.StringIO(text), "pdb-seqres")
        }
    # Biopython fails on corrupt files in many ways (ValueError, IndexError, even UnboundLocalError
    # from its header parser), all of which mean the same thing to the user.
    except Exception as err:
        raise SeqdiffError(f"{path}: not a readable PDB file ({' '.join(str(err).split())})") from None
    chains = {}
    for chain in next(iter(structure), []):
        # ATOM records, plus modified amino acids (MSE, M3L, ...) that PDB files list as HETATM.
        residues = [
            Residue(res.id[1], res.id[2].strip(), protein_letters_3to1_extended.get(res.get_resname(), "X"))
            for res in chain
            if res.id[0] == " " or is_aa(res, standard=False)
        ]
        if residues:
            chains[chain.id] = residues
    if not chains:
        raise SeqdiffError(f"{path}: no protein residues found")
    return MotifSource(path, chains, seqres)


def _load_fasta(path: Path) -> MotifSource:
    records = read_sequences(path)
    ids = [record.id for record in records]
    if all(len(name) == 1 and name.isalpha() for name in ids) and len(set(ids)) == len(ids):
        names = ids
    elif len(records) <= len(string.ascii_uppercase):
        names = list(string.ascii_uppercase[: len(records)])
    else:
        raise SeqdiffError(
            f"{path}: {len(records)} records is more chains (A-Z) than a motif source can name"
        )
    seqres = {name: record.sequence for name, record in zip(names, records, strict=True)}
    chains = {name: [Residue(i, "", aa) for i, aa in enumerate(seq, start=1)] for name, seq in seqres.items()}
    return MotifSource(path, chains, seqres)


def load_motif_source(path: PathLike) -> MotifSource:
    """Read the chains of a PDB file (``.pdb``/``.ent``, maybe gzipped) or a FASTA file.

    FASTA records are chains named by their ids when those are distinct single letters, else
    A, B, C... in file order; their residues are numbered 1..L.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "motif.fasta"
        >>> _ = path.write_text(">A\\nADQLTEEQIAEFKEAFSLFDKDGDG\\n")
        >>> source = load_motif_source(path)
        >>> source.chains["A"][15], "".join(r.aa for r in source.chains["A"][15:19])
        (Residue(number=16, icode='', aa='F'), 'FSLF')
    """
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(_PDB_SUFFIXES):
        return _load_pdb(path)
    if name.endswith(_FASTA_SUFFIXES):
        return _load_fasta(path)
    suffixes = ", ".join(_PDB_SUFFIXES + _FASTA_SUFFIXES)
    raise SeqdiffError(f"{path}: unknown motif source type; expected one of {suffixes} (optionally .gz)")


@dataclass(frozen=True)
class MotifPiece:
    """A motif segment of a contig with its residue letters from the motif source."""

    segment: MotifSegment
    sequence: str

    @property
    def name(self) -> str:
        return self.segment.name


def _pdb_numbered(segment: MotifSegment, source: MotifSource, context: str) -> str:
    residues = source.chains.get(segment.chain)
    if residues is None:
        raise SeqdiffError(
            f"{context}: chain {segment.chain!r} not found (chains: {', '.join(source.chains)})"
        )
    index = {(res.number, res.icode): i for i, res in enumerate(residues)}
    ends = [(segment.start, segment.start_icode), (segment.end, segment.end_icode)]
    absent = [f"{segment.chain}{number}{icode}" for number, icode in ends if (number, icode) not in index]
    if absent:
        raise SeqdiffError(
            f"{context}: not in the file: {', '.join(dict.fromkeys(absent))} "
            f"(chain {segment.chain} has residues {residues[0].number}-{residues[-1].number})"
        )
    first, last = (index[end] for end in ends)
    if last < first:
        raise SeqdiffError(
            f"{context}: residue {segment.chain}{segment.end} comes before {segment.start} in the file"
        )
    part = residues[first : last + 1]
    gaps = [(a.number + 1, b.number - 1) for a, b in pairwise(part) if b.number > a.number + 1]
    if gaps:
        raise SeqdiffError(
            f"{context}: residues {format_ranges(gaps)} of chain {segment.chain} are missing from the structure"
        )
    return "".join(res.aa for res in part)


def _sequentially_numbered(segment: MotifSegment, source: MotifSource, context: str) -> str:
    seq = source.seqres.get(segment.chain)
    if seq is None:
        present = ", ".join(source.seqres) or "none"
        raise SeqdiffError(
            f"{context}: chain {segment.chain!r} has no SEQRES sequence (chains with one: {present})"
        )
    if segment.start_icode or segment.end_icode:
        raise SeqdiffError(f"{context}: insertion codes have no meaning with sequential numbering")
    if segment.start < 1 or segment.end > len(seq):
        raise SeqdiffError(
            f"{context}: outside chain {segment.chain}, whose sequence has {len(seq)} residues"
        )
    return seq[segment.start - 1 : segment.end]


def resolve_contig(
    segments: list[Segment], source: MotifSource, numbering: Numbering = "pdb"
) -> list[MotifPiece]:
    """The motif segments with their sequences, checking each range against ``source``.

    ``numbering="pdb"`` reads motif ranges as PDB residue numbers of the residues present in the
    structure: every residue of a range must be there. ``numbering="sequential"`` reads them as
    1-based positions in the chain's full (SEQRES) sequence, which is how some benchmark
    problems count (6EXZ: chain A is numbered from 530 in its PDB file, but its motif A28-42 means
    positions 28-42). For a FASTA source both numberings are the same.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "motif.fasta"
        >>> _ = path.write_text(">A\\nADQLTEEQIAEFKEAFSLFDKDGDG\\n")
        >>> [(p.name, p.sequence) for p in resolve_contig(parse_contig("5,A16-19,5"), load_motif_source(path))]
        [('A16-19', 'FSLF')]
    """
    lookup = _pdb_numbered if numbering == "pdb" else _sequentially_numbered
    return [
        MotifPiece(segment, lookup(segment, source, f"{source.path}: contig segment {segment.name!r}"))
        for segment in segments
        if isinstance(segment, MotifSegment)
    ]


@dataclass(frozen=True)
class Layout:
    """A sampled design layout.

    ``template`` has the motif letters at motif positions and ``_`` at designed ones; ``motifs`` gives
    each motif's name and 0-based start in the template; ``contig`` is the contig with the sampled
    lengths (designed segments of length 0 left out).
    """

    template: str
    motifs: tuple[tuple[str, int], ...]
    contig: str


def sample_layout(
    segments: list[Segment],
    motif_seqs: list[str],
    length_range: tuple[int, int] | None,
    rng: np.random.Generator,
) -> Layout:
    """Draw each designed length uniformly from its range, keeping the total within ``length_range``.

    As in RFdiffusion, draws whose total falls outside the range are rejected (a bounded number of
    times). ``length_range=None`` allows every total the contig allows. ``motif_seqs`` has one
    sequence per motif segment, in order.

    Example:
        >>> sample_layout(parse_contig("A1-2,0-3"), ["MK"], (4, 4), np.random.default_rng(1)).template
        'MK__'
    """
    contig = format_contig(segments)
    motifs = [segment for segment in segments if isinstance(segment, MotifSegment)]
    if len(motif_seqs) != len(motifs):
        raise SeqdiffError(
            f"contig {contig!r} has {len(motifs)} motif segments but {len(motif_seqs)} motif sequences"
        )
    designed = [segment for segment in segments if isinstance(segment, DesignedSegment)]
    mins = np.array([segment.min_len for segment in designed], dtype=np.int64)
    maxs = np.array([segment.max_len for segment in designed], dtype=np.int64)
    motif_total = sum(map(len, motif_seqs))
    lowest, highest = motif_total + int(mins.sum()), motif_total + int(maxs.sum())
    if length_range is not None and length_range[0] > length_range[1]:
        raise SeqdiffError(f"length range {length_range[0]}-{length_range[1]} is reversed")
    low, high = length_range if length_range is not None else (lowest, highest)
    low = max(low, 1)
    if low > highest or high < lowest or low > high:
        raise SeqdiffError(
            f"contig {contig!r} gives {lowest}-{highest} residues, which cannot meet the length range {low}-{high}"
        )
    for _ in range(_SAMPLE_BATCHES):
        draws = rng.integers(mins, maxs + 1, size=(_SAMPLE_BATCH, len(designed)))
        totals = motif_total + draws.sum(axis=1)
        hits = np.flatnonzero((totals >= low) & (totals <= high))
        if hits.size:
            lengths = iter(draws[hits[0]].tolist())
            break
    else:
        raise SeqdiffError(
            f"contig {contig!r}: no draw of designed lengths gave a total in {low}-{high} after "
            f"{_SAMPLE_BATCH * _SAMPLE_BATCHES} tries; widen the length range or the segment ranges"
        )
    parts, placed, fixed = [], [], []
    seqs = iter(motif_seqs)
    position = 0
    for segment in segments:
        if isinstance(segment, MotifSegment):
            parts.append(next(seqs))
            placed.append((segment.name, position))
            fixed.append(segment)
        else:
            size = next(lengths)
            parts.append("_" * size)
            if size:
                fixed.append(DesignedSegment(size, size))
        position += len(parts[-1])
    return Layout("".join(parts), tuple(placed), format_contig(fixed))
