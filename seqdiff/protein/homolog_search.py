"""Finding a protein's homologs in a local FASTA database with HMMER3 (pyhmmer): jackhmmer or phmmer.

A database sequence is a homolog when HMMER includes it: its sequence E-value, and that of at
least one of its domains, is below ``evalue`` (default :data:`INCLUSION_EVALUE`), for the
database's own size. For jackhmmer, the hits of the last iteration count. Each hit is returned as
the span of its included domains (first envelope start to last envelope end), like the aligned
part of a homolog in an A3M file, or as the whole database sequence with ``full_length=True``.

Example (a three-sequence database; ``write_fasta(found.records, "homologs.fasta")`` saves the hits):
    >>> import tempfile
    >>> query = "ADQLTEEQIAEFKEAFSLFDKDGDGTITTKELGTVMRSLGQNPTEAELQDMINEVDADGN"  # 60 residues of calmodulin
    >>> path = Path(tempfile.mkdtemp()) / "db.fasta"
    >>> _ = path.write_text(f">calm\\n{query}\\n>calm_part\\n{query[8:52]}\\n>other\\nGSHPWLNDECMKTAYIAKQRQISFVKSHFSRQ\\n")
    >>> found = search_homologs([query], path)
    >>> found.ids, [len(s) for s in found.sequences]
    (('calm', 'calm_part'), [60, 44])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pyhmmer import easel, hmmer

from seqdiff.errors import SeqdiffError
from seqdiff.protein.homologs import Homologs, check_protein, distinct_homologs, residues_of
from seqdiff.protein.io import PathLike, ProteinRecord, iter_fasta_rows

INCLUSION_EVALUE = 1e-3
"""HMMER's inclusion threshold (``--incE`` and ``--incdomE``) for a database sequence to count as a homolog."""

SEARCH_METHODS = ("jackhmmer", "phmmer")

AMINO = easel.Alphabet.amino()
"""The HMMER protein alphabet."""


def digitize(sequences: Sequence[str]) -> easel.DigitalSequenceBlock:
    """Validated protein sequences as a pyhmmer block, each named by its index (for mapping hits back).

    Example:
        >>> [seq.name for seq in digitize(["MKT", "MKV"])]
        ['0', '1']
    """
    return easel.DigitalSequenceBlock(
        AMINO,
        [
            easel.TextSequence(name=str(i).encode(), sequence=s).digitize(AMINO)
            for i, s in enumerate(sequences)
        ],
    )


def read_database(path: PathLike) -> tuple[list[ProteinRecord], easel.DigitalSequenceBlock]:
    """The records of a (gzipped) protein FASTA database and the same sequences digitized for HMMER.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "db.fasta"
        >>> _ = path.write_text(">a\\nMKTAYIAKQR\\n>b\\nGSHPWLNDEC\\n")
        >>> records, block = read_database(path)
        >>> [r.id for r in records], len(block)
        (['a', 'b'], 2)
    """
    source = str(path)
    records = [
        ProteinRecord(record, description, residues_of(row, record, source))
        for record, description, row in iter_fasta_rows(path)
    ]
    check_protein([r.sequence for r in records], source)
    return records, digitize([r.sequence for r in records])


def _query_block(queries: Sequence[ProteinRecord | str]) -> easel.DigitalSequenceBlock:
    if isinstance(queries, str | ProteinRecord) or not queries:
        raise SeqdiffError("search_homologs needs a non-empty list of query sequences")
    sequences = []
    for index, query in enumerate(queries):
        name, seq = (
            (query.id, query.sequence) if isinstance(query, ProteinRecord) else (f"#{index + 1}", query)
        )
        sequences.append(residues_of(seq, name, "query"))
    return digitize(sequences)


def _check_settings(method: str, evalue: float, max_hits: int | None, iterations: int) -> None:
    if method not in SEARCH_METHODS:
        raise SeqdiffError(f"unknown search method {method!r}; choose one of {', '.join(SEARCH_METHODS)}")
    if not evalue > 0:
        raise SeqdiffError(f"the inclusion E-value must be positive, got {evalue}")
    if max_hits is not None and max_hits < 2:
        raise SeqdiffError(f"max_hits must be at least 2, got {max_hits}")
    if iterations < 1:
        raise SeqdiffError(f"iterations must be at least 1, got {iterations}")


def search_homologs(
    queries: Sequence[ProteinRecord | str],
    database: PathLike,
    method: str = "jackhmmer",
    evalue: float = INCLUSION_EVALUE,
    max_hits: int | None = None,
    iterations: int = 3,
    full_length: bool = False,
) -> Homologs:
    """The database sequences HMMER includes as homologs of any query (best E-value first, at most
    ``max_hits``), as unaligned :class:`Homologs`. Queries are not added unless the database holds them.

    ``full_length``: whole database sequences instead of the spans of the included domains.
    ``method``: ``"jackhmmer"`` (iterative, up to ``iterations`` rounds, hits of the last round)
    or ``"phmmer"`` (one sequence-to-sequence search). A missing, empty or non-protein database,
    or fewer than 2 distinct homologs found, is a one-line SeqdiffError.

    Example:
        >>> import tempfile
        >>> query = "ADQLTEEQIAEFKEAFSLFDKDGDGTITTKELGTVMRSLGQNPTEAELQDMINEVDADGN"  # 60 residues of calmodulin
        >>> path = Path(tempfile.mkdtemp()) / "db.fasta"
        >>> _ = path.write_text(f">calm\\n{query}\\n>calm_part\\n{query[8:52]}\\n>other\\nGSHPWLNDECMKTAYIAKQRQISFVKSHFSRQ\\n")
        >>> search_homologs([query], path, method="phmmer").ids
        ('calm', 'calm_part')
    """
    _check_settings(method, evalue, max_hits, iterations)
    query_block = _query_block(queries)
    if not Path(database).is_file():
        raise SeqdiffError(f"{database}: database file not found")
    records, targets = read_database(database)
    thresholds = {"incE": evalue, "incdomE": evalue, "cpus": 1}
    if method == "jackhmmer":
        results = hmmer.jackhmmer(query_block, targets, max_iterations=iterations, **thresholds)
        all_hits = [result.hits for result in results]
    else:
        all_hits = list(hmmer.phmmer(query_block, targets, **thresholds))
    best: dict[int, tuple[float, slice]] = {}  # database index -> (E-value, domain span) of its best hit
    for hits in all_hits:
        for hit in hits.included:
            index = int(hit.name)
            domains = list(hit.domains.included)
            if not domains:  # the whole sequence scores, but no single domain passes incdomE
                continue
            span = slice(min(d.env_from for d in domains) - 1, max(d.env_to for d in domains))
            if index not in best or hit.evalue < best[index][0]:
                best[index] = (hit.evalue, span)
    if not best:
        raise SeqdiffError(f"{database}: no sequence is a homolog of the query at E < {evalue:g} ({method})")
    ranked = sorted(best, key=lambda i: (best[i][0], i))[:max_hits]
    sequences = [records[i].sequence if full_length else records[i].sequence[best[i][1]] for i in ranked]
    return distinct_homologs(f"{database} ({method} hits)", [records[i].id for i in ranked], sequences)
