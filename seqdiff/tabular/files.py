"""Read Parquet and CSV files: whole (`read_table`) or as a stream of record batches (`iter_record_batches`).

Missing, unreadable or other files are one-line SeqdiffErrors naming the path; empty CSV fields are
missing cells, as in pandas.

Example:
    >>> read_table("no/such.parquet")
    Traceback (most recent call last):
    ...
    seqdiff.errors.SeqdiffError: no/such.parquet: no such file
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from seqdiff.errors import SeqdiffError


def _file_format(path: Path) -> str:
    if not path.exists():
        raise SeqdiffError(f"{path}: no such file")
    if not path.is_file():
        raise SeqdiffError(f"{path}: not a file")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] in ([".parquet"], [".pq"]):
        return "parquet"
    # The CSV reader decompresses .csv.gz, .csv.bz2, ... by itself.
    for fmt in ("csv", "tsv"):
        if f".{fmt}" in suffixes[-2:]:
            return fmt
    raise SeqdiffError(f"{path}: unsupported file type (expected .parquet, .pq, .csv or .tsv)")


def _csv_options(fmt: str, column_types: dict[str, pa.DataType] | None) -> dict[str, Any]:
    return {
        "parse_options": pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
        # Empty strings are missing cells, as in pandas.
        "convert_options": pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=True),
    }


def _error(path: Path, fmt: str, exc: Exception) -> SeqdiffError:
    what = "not a readable Parquet file" if fmt == "parquet" else "cannot parse the file as CSV"
    return SeqdiffError(f"{path}: {what} ({str(exc).splitlines()[0]})")


def read_table(path: str | Path, column_types: dict[str, pa.DataType] | None = None) -> pa.Table:
    """Read a whole Parquet (.parquet, .pq) or CSV (.csv, .tsv, optionally compressed) file.

    Missing, unreadable or other files are one-line SeqdiffErrors naming the path.

    Example (an empty CSV cell is missing):
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("a,c\\n1.5,x\\n,y\\n")
        >>> read_table(path).to_pydict()
        {'a': [1.5, None], 'c': ['x', 'y']}
    """
    path = Path(path)
    fmt = _file_format(path)
    try:
        if fmt == "parquet":
            return pq.read_table(path)
        return pacsv.read_csv(path, **_csv_options(fmt, column_types))
    except (pa.ArrowException, OSError) as exc:
        raise _error(path, fmt, exc) from exc


def iter_record_batches(
    path: str | Path, batch_size: int = 65_536, column_types: dict[str, pa.DataType] | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream a Parquet or CSV file as record batches of at most `batch_size` rows.

    The file is opened (and checked) at the call, not at the first batch. CSV column types are
    inferred from the first block; pass `column_types` when later rows could change them.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.parquet"
        >>> pq.write_table(pa.table({"x": list(range(12))}), path)
        >>> [b.num_rows for b in iter_record_batches(path, 5)]
        [5, 5, 2]
    """
    if batch_size < 1:
        raise SeqdiffError(f"batch_size must be at least 1, got {batch_size}")
    path = Path(path)
    fmt = _file_format(path)
    try:
        if fmt == "parquet":
            batches = pq.ParquetFile(path).iter_batches(batch_size=batch_size)
        else:
            batches = pacsv.open_csv(path, **_csv_options(fmt, column_types))
    except (pa.ArrowException, OSError) as exc:
        raise _error(path, fmt, exc) from exc

    def generate() -> Iterator[pa.RecordBatch]:
        try:
            for batch in batches:
                for start in range(0, batch.num_rows, batch_size):
                    yield batch.slice(start, batch_size)
        except (pa.ArrowException, OSError) as exc:
            raise _error(path, fmt, exc) from exc

    return generate()
