"""Reading and writing protein sequence files: FASTA, gzipped FASTA and A3M.

Compression is detected from the gzip magic bytes, the format from the name: ``.a3m`` / ``.a3m.gz``
files are A3M (lower-case insertion letters and ``-``/``.`` gaps are dropped, giving the raw
sequence), anything else is FASTA (lower case is accepted and upper-cased). Every problem is a
one-line SeqdiffError naming the file and record.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "designs.a3m"
    >>> _ = path.write_text(">d1 seed=1\\nMKta-YIAK\\n")
    >>> write_fasta(read_sequences(path), "-")
    >d1 seed=1
    MKYIAK
"""

from __future__ import annotations

import gzip
import io
import os
import re
import sys
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from Bio.SeqIO.FastaIO import SimpleFastaParser

from seqdiff.atomic import atomic_path
from seqdiff.errors import SeqdiffError
from seqdiff.protein.alphabet import normalize

PathLike = str | os.PathLike[str]

_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 4096
_A3M_NOT_RESIDUE = re.compile(r"[a-z.\-]")


@dataclass(frozen=True, slots=True)
class ProteinRecord:
    """One sequence: ``id`` is the first word of the header, ``description`` the rest of it.

    Example:
        >>> ProteinRecord("design_1", "seed=3 temperature=0.7", "MK_L")
        ProteinRecord(id='design_1', description='seed=3 temperature=0.7', sequence='MK_L')
    """

    id: str
    description: str
    sequence: str


@contextmanager
def open_text(path: PathLike) -> Iterator[TextIO]:
    """Open a plain or gzipped (by magic bytes) UTF-8 text file; read errors become SeqdiffError.

    Example:
        >>> import gzip, tempfile
        >>> path = Path(tempfile.mkdtemp()) / "x.fasta.gz"
        >>> _ = path.write_bytes(gzip.compress(b">x\\nMKT\\n"))
        >>> with open_text(path) as handle:
        ...     handle.read()
        '>x\\nMKT\\n'
    """
    path = Path(path)
    try:
        with path.open("rb") as probe:
            compressed = probe.read(2) == _GZIP_MAGIC
        raw = gzip.open(path, "rb") if compressed else path.open("rb")
    except FileNotFoundError:
        raise SeqdiffError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SeqdiffError(f"{path}: is a directory, not a file") from None
    except OSError as err:
        raise SeqdiffError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        with raw, io.TextIOWrapper(raw, encoding="utf-8-sig") as text:
            if b"\0" in raw.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]:
                raise SeqdiffError(f"{path}: binary data, not a text file")
            yield text
    except UnicodeDecodeError:
        raise SeqdiffError(f"{path}: binary data, not a UTF-8 text file") from None
    except (OSError, EOFError, zlib.error) as err:
        raise SeqdiffError(f"{path}: cannot read: {' '.join(str(err).split())}") from None


def _record_lines(text: TextIO, path: Path, comment: str | None) -> Iterator[str]:
    """The lines of ``text``, after checking that the first non-blank line is a FASTA header.

    Biopython's parser silently skips anything before the first ``>``, which would hide a
    header-less file or drop its first sequence.
    """
    for number, line in enumerate(text, start=1):
        if not line.strip() or (comment is not None and line.startswith(comment)):
            continue
        if not line.startswith(">"):
            raise SeqdiffError(
                f"{path}: line {number}: no '>' header before the sequence {line.strip()[:20]!r}"
            )
        yield line
        break
    yield from text


def iter_fasta_rows(path: PathLike, comment: str | None = None) -> Iterator[tuple[str, str, str]]:
    """Stream ``(id, description, row)`` of a FASTA-like file with the row as written (gaps, case).

    Lines starting with ``comment`` before the first header are skipped. An empty file, a missing
    header or an empty header is a one-line SeqdiffError naming the file.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "family.a3m"
        >>> _ = path.write_text("#8 1\\n>1prw calmodulin\\nADQLTEEQ\\n>hit\\nAD-LteEEQ\\n")
        >>> list(iter_fasta_rows(path, comment="#"))
        [('1prw', 'calmodulin', 'ADQLTEEQ'), ('hit', '', 'AD-LteEEQ')]
    """
    path = Path(path)
    count = 0
    with open_text(path) as text:
        for count, (title, row) in enumerate(SimpleFastaParser(_record_lines(text, path, comment)), start=1):
            words = title.split(maxsplit=1)
            if not words:
                raise SeqdiffError(f"{path}: record #{count} has an empty header")
            yield words[0], words[1] if len(words) > 1 else "", row
    if count == 0:
        raise SeqdiffError(f"{path}: empty file (no sequences)")


def iter_sequences(path: PathLike) -> Iterator[ProteinRecord]:
    """Stream the records of a FASTA, gzipped FASTA or A3M file, validating each one.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "family.a3m"
        >>> _ = path.write_text(">1prw\\nADQLTEEQ\\n>hit\\nAD-LteEEQ\\n")
        >>> for record in iter_sequences(path):
        ...     print(record.id, record.sequence)
        1prw ADQLTEEQ
        hit ADLEEQ
    """
    path = Path(path)
    a3m = path.name.lower().endswith((".a3m", ".a3m.gz"))
    # HHblits/ColabFold A3M files may start with a '#' line (query lengths and cardinalities).
    for record_id, description, raw in iter_fasta_rows(path, comment="#" if a3m else None):
        seq = _A3M_NOT_RESIDUE.sub("", raw) if a3m else raw
        if not seq.rstrip("*"):
            raise SeqdiffError(f"{path}: record {record_id!r} has no sequence")
        yield ProteinRecord(record_id, description, normalize(seq, record=record_id, source=str(path)))


def read_sequences(path: PathLike) -> list[ProteinRecord]:
    """All records of a FASTA, gzipped FASTA or A3M file (see :func:`iter_sequences`).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "targets.fasta"
        >>> write_fasta([ProteinRecord("1prw", "", "ADQLTEEQ"), ProteinRecord("5tpn", "", "MKTAYIAKQR")], path)
        >>> [r.id for r in read_sequences(path)]
        ['1prw', '5tpn']
    """
    return list(iter_sequences(path))


def ensure_not_input(output: PathLike, inputs: Iterable[PathLike]) -> None:
    """Raise SeqdiffError if ``output`` is one of ``inputs`` (also through links); ``-`` is stdout.

    Example:
        >>> ensure_not_input("out.fasta", ["in.fasta"])
        >>> ensure_not_input("in.fasta", ["./in.fasta"])
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: in.fasta: refusing to overwrite the input file in.fasta
    """
    if str(output) == "-":
        return
    out = Path(output)
    for source in map(Path, inputs):
        same = out.resolve() == source.resolve() or (
            out.exists() and source.exists() and os.path.samefile(out, source)
        )
        if same:
            raise SeqdiffError(f"{out}: refusing to overwrite the input file {source}")


def _write_records(
    handle: TextIO, records: Iterable[ProteinRecord], line_width: int | None, target: str
) -> None:
    for record in records:
        if not record.id or any(ch.isspace() for ch in record.id):
            raise SeqdiffError(f"{target}: record {record.id!r}: the id must be one non-empty word")
        if "\n" in record.description or "\r" in record.description:
            raise SeqdiffError(f"{target}: record {record.id!r}: the description must be one line")
        seq = normalize(record.sequence, record=record.id, source=target)
        if not seq:
            raise SeqdiffError(f"{target}: record {record.id!r} has no sequence")
        header = f"{record.id} {record.description}" if record.description else record.id
        width = line_width or len(seq)
        handle.write(f">{header}\n")
        handle.writelines(f"{seq[i : i + width]}\n" for i in range(0, len(seq), width))


def write_fasta(
    records: Iterable[ProteinRecord],
    output: PathLike,
    line_width: int | None = 60,
    *,
    inputs: Iterable[PathLike] = (),
    allow_overwrite_input: bool = False,
) -> None:
    """Write records as FASTA to ``output`` (``-`` = stdout), atomically, wrapping at ``line_width``.

    The file appears complete or not at all: records go to a temporary file in the same directory,
    which is fsynced and then renamed over ``output``. Writing over one of ``inputs`` is refused
    unless ``allow_overwrite_input``. ``line_width=None`` writes each sequence on one line.

    Example:
        >>> write_fasta([ProteinRecord("d1", "seed=1", "MKTAYIAKQR")], "-", line_width=4)
        >d1 seed=1
        MKTA
        YIAK
        QR
    """
    if line_width is not None and line_width < 1:
        raise SeqdiffError(f"line width must be at least 1, got {line_width}")
    if str(output) == "-":
        _write_records(sys.stdout, records, line_width, "<stdout>")
        sys.stdout.flush()
        return
    path = Path(output)
    if not allow_overwrite_input:
        ensure_not_input(path, inputs)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        _write_records(handle, records, line_width, str(path))
