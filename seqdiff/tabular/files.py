"""Read Parquet, CSV and Excel files: whole (`read_table`) or as a stream of record batches
(`iter_record_batches`); Excel workbooks (.xlsx) as `seqdiff.tabular.excel` reads them.

Missing, unreadable or other files are one-line SeqdiffErrors naming the path. A CSV file is read as
its `seqdiff.tabular.read_options.ReadOptions` say, and what they leave open (its encoding, delimiter,
decimal mark, number and date styles) as its first 64 KiB show (`seqdiff.tabular.csv_sniff`); empty
fields and the `NA_VALUES` tokens are missing cells. What cannot be told apart is a one-line error that
names the flag that settles it.

Example:
    >>> read_table("no/such.parquet")
    Traceback (most recent call last):
    ...
    seqdiff.errors.SeqdiffError: no/such.parquet: no such file
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("age;job\\n39;?\\n40;NA\\n41;clerk\\n")
    >>> read_table(path).to_pydict()
    {'age': [39, 40, 41], 'job': [None, None, 'clerk']}
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.csv_sniff import CsvRead
from seqdiff.tabular.csv_types import LATE_VALUE, held_by, late_message, late_types
from seqdiff.tabular.excel import read_sheet
from seqdiff.tabular.read_options import ReadOptions

SPACED_QUOTE = re.compile(r'[,;\t|] +"')  # `20, "$1,000"`: Arrow opens a quoted field only at its start


def file_format(path: Path, exists: bool = True) -> str:
    """ "parquet", "csv", "tsv" or "excel" (.xlsx, .xlsm), from the name of the file at `path` (a ``.txt``
    file is delimited text, as spreadsheets export it: "csv"), or "parquet" for a folder of Parquet files
    (a dataset Spark or `pyarrow.parquet.write_to_dataset` wrote, partitioned or not); a one-line
    SeqdiffError for another name, or (when `exists`) a missing file or another folder."""
    if exists and not path.exists():
        raise SeqdiffError(f"{path}: no such file")
    if exists and path.is_dir():
        if not _has_parquet(path):
            raise SeqdiffError(
                f"{path}: a folder with no Parquet file in it (a dataset's parts end in .parquet)"
            )
        return "parquet"
    if exists and not path.is_file():
        raise SeqdiffError(f"{path}: not a file")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] in ([".parquet"], [".pq"]):
        return "parquet"
    if suffixes[-1:] in ([".xlsx"], [".xlsm"]):
        return "excel"
    if suffixes[-1:] == [".xls"]:
        raise SeqdiffError(f"{path}: a legacy Excel workbook (.xls); save it as .xlsx or CSV")
    # The CSV reader decompresses .csv.gz, .csv.bz2, ... by itself.
    for suffix, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".txt", "csv")):
        if suffix in suffixes[-2:]:
            return fmt
    raise SeqdiffError(f"{path}: unsupported file type (expected .parquet, .pq, .csv, .tsv, .txt or .xlsx)")


def _has_parquet(folder: Path) -> bool:
    """Whether a folder holds a Parquet file that Arrow reads as part of a dataset: below it, but for
    names that start with ``_`` or ``.`` (Spark's ``_SUCCESS``, hidden files)."""
    return any(
        part.suffix.lower() in (".parquet", ".pq")
        and not any(n.startswith(("_", ".")) for n in part.relative_to(folder).parts)
        for part in folder.rglob("*")
    )


def _dataset(path: Path) -> ds.Dataset:
    """A Parquet file or a dataset's folder (hive partitions, ``year=2024/``, read as columns)."""
    return ds.dataset(path, format="parquet", partitioning="hive")


def parquet_rows(path: str | Path) -> int:
    """The rows of a Parquet file or dataset folder, from its metadata."""
    return _dataset(Path(path)).count_rows()


def parquet_schema(path: str | Path) -> pa.Schema:
    """The schema of a Parquet file or dataset folder."""
    return _dataset(Path(path)).schema


def _csv_read(path: str | Path, options: ReadOptions | None) -> CsvRead | None:
    """How the CSV file at `path` is read (`CsvRead.of`, detected once per file state); None for a
    Parquet or Excel file."""
    path = Path(path)
    fmt = file_format(path)
    return None if fmt in ("parquet", "excel") else CsvRead.of(path, fmt, options or ReadOptions())


def numbers_in_header(path: str | Path, options: ReadOptions | None = None) -> list[str]:
    """The header fields of a CSV file that are numbers over columns of numbers: "39" over ages, as when
    a first line of data is read as column names (give ``--no-header``). Empty for other files and
    without a header (`ReadOptions.header`).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("39,clerk,40\\n50,nurse,38\\n")
        >>> numbers_in_header(path)
        ['39', '40']
    """
    read = _csv_read(path, options)
    return list(read.numbered) if read else []


def preamble_lines(path: str | Path, options: ReadOptions | None = None) -> int:
    """How many lines stand above a CSV file's header (``#`` notes, a title: skipped when read, written
    back above a CSV output's header); 0 for other files.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("# scale 2\\n# site B\\nkg,n\\n70.5,1\\n")
        >>> preamble_lines(path)
        2
    """
    read = _csv_read(path, options)
    return read.preamble.count("\n") if read else 0


def digit_code_columns(path: str | Path, options: ReadOptions | None = None) -> list[str]:
    """The columns of a CSV file read as text because their whole numbers are codes
    (`seqdiff.tabular.csv_numbers.digit_codes`: leading zeros as in ZIP codes, or more digits than a
    64-bit integer holds; in the first 64 KiB or further down, `csv_types.late_types`); empty for
    other files.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("zip,n\\n01001,7\\n94105,12\\n")
        >>> digit_code_columns(path), read_table(path).column("zip").to_pylist()
        (['zip'], ['01001', '94105'])
    """
    read = _csv_read(path, options)
    if read is None:
        return []
    return [*read.codes, *late_types(Path(path), file_format(Path(path)), options or ReadOptions()).codes]


def csv_dialect(path: str | Path, options: ReadOptions | None = None) -> tuple[str, str, str, bool, str]:
    """The delimiter, decimal mark, encoding and header (whether there is one) a CSV file is read with:
    `options`' or else detected; and the lines above its header (``#`` notes, a title).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("# scale 2\\nkg;n\\n70,5;1\\n")
        >>> csv_dialect(path)
        (';', ',', 'utf-8', True, '# scale 2\\n')
    """
    path = Path(path)
    read = CsvRead.of(path, file_format(path), options or ReadOptions())
    return (*read.dialect, read.options.encoding, read.options.header, read.preamble)


def _check_text(path: Path, schema: pa.Schema, encoding: str) -> None:
    """A one-line SeqdiffError for a CSV column read as binary: its bytes are not text in `encoding`."""
    binary = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    if binary:
        raise SeqdiffError(
            f"{path}: column {binary[0]!r} is not {encoding} text; give the file's encoding, e.g. "
            "--encoding cp1252 (Windows, Western Europe)"
        )


def _line_of(path: Path, text: str, encoding: str) -> int | None:
    """The number of the first line of the file at `path` that reads `text` (None if none does)."""
    with pa.input_stream(str(path), compression="detect") as stream:
        lines = io.TextIOWrapper(io.BufferedReader(stream), encoding, errors="replace", newline="")
        return next((n for n, line in enumerate(lines, 1) if line.rstrip("\r\n") == text), None)


def _late_word(message: str, names: list[str] | None, options: ReadOptions) -> str | None:
    """What Arrow's error for a word below a column's first block of numbers or dates means
    (`csv_types.late_message`); None for other errors."""
    found = LATE_VALUE.search(message)
    if not found or names is None or int(found[1]) >= len(names):
        return None
    return late_message(names[int(found[1])], held_by(found[2]), [found[3]], options.na_values)


def _error(
    path: Path,
    fmt: str,
    exc: Exception,
    options: ReadOptions | None = None,
    names: list[str] | None = None,
) -> SeqdiffError:
    """A one-line SeqdiffError for Arrow's error `exc` reading the file at `path` (with the CSV file's
    `options` and column `names`, when known)."""
    options = options or ReadOptions()
    what = "not a readable Parquet file" if fmt == "parquet" else "cannot parse the file as CSV"
    hint = "; give its encoding with --encoding" if "UTF8" in str(exc) else ""
    message = str(exc).splitlines()[0]
    late = _late_word(message, names, options)
    if late:
        return SeqdiffError(f"{path}: {late}")
    encoding = options.encoding
    # Arrow names a row with the wrong number of fields by its text; the line number finds it.
    bad_row = re.search(r"Expected \d+ columns, got \d+: (.*)", message)
    line = bad_row and _line_of(path, bad_row[1], encoding or "utf-8")
    where = f"line {line:,}: " if line else ""
    if bad_row and SPACED_QUOTE.search(bad_row[1]):
        hint += "; a quote after a space is text, not the start of a quoted field: remove the spaces after the delimiters"
    return SeqdiffError(f"{path}: {what} ({where}{message}){hint}")


def _names(path: Path, options: ReadOptions) -> list[str] | None:
    """A CSV file's column names as Arrow reads them, for an error's message; None when unreadable."""
    try:
        read = _csv_read(path, options)
        return pacsv.open_csv(path, **read.arrow_options(None)).schema.names if read else None
    except (pa.ArrowException, OSError, SeqdiffError):
        return None


def read_table(
    path: str | Path,
    column_types: dict[str, pa.DataType] | None = None,
    options: ReadOptions | None = None,
) -> pa.Table:
    """Read a whole Parquet (.parquet, .pq), CSV (.csv, .tsv, .txt, optionally compressed) or Excel
    (.xlsx) file as `options` say (default `ReadOptions()`).

    Missing, unreadable or other files are one-line SeqdiffErrors naming the path.

    Example (an empty CSV cell is missing):
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("a,c\\n1.5,x\\n,y\\n")
        >>> read_table(path).to_pydict()
        {'a': [1.5, None], 'c': ['x', 'y']}
    """
    path, options = Path(path), options or ReadOptions()
    fmt = file_format(path)
    try:
        if fmt == "parquet":
            return pq.read_table(path)
        if fmt == "excel":
            return read_sheet(path, options.sheet, options.na_values)
        csv_read = CsvRead.of(path, fmt, options)
        types = late_types(path, fmt, options).types | (column_types or {})
        options = csv_read.options
        table = csv_read.convert(pacsv.read_csv(path, **csv_read.arrow_options(types)), stream=False)
    except (pa.ArrowException, OSError) as exc:
        raise _error(path, fmt, exc, options, _names(path, options)) from exc
    _check_text(path, table.schema, options.encoding)
    return table


def iter_record_batches(
    path: str | Path,
    batch_size: int = 65_536,
    column_types: dict[str, pa.DataType] | None = None,
    options: ReadOptions | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream a Parquet, CSV or Excel file (read as `options` say) as record batches of at most
    `batch_size` rows; an Excel sheet (at most a million rows) is read whole, then batched.

    The file is opened (and checked) at the call, not at the first batch. A CSV column's type is the
    one its later rows need (`csv_types.late_types`), or the one `column_types` gives it.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.parquet"
        >>> pq.write_table(pa.table({"x": list(range(12))}), path)
        >>> [b.num_rows for b in iter_record_batches(path, 5)]
        [5, 5, 2]
    """
    if batch_size < 1:
        raise SeqdiffError(f"batch_size must be at least 1, got {batch_size}")
    path, options = Path(path), options or ReadOptions()
    fmt = file_format(path)
    csv_read = None
    try:
        if fmt == "parquet" and path.is_dir():  # in order: a row's number is its place in the dataset
            batches = _dataset(path).to_batches(batch_size=batch_size, use_threads=False)
        elif fmt == "parquet":
            batches = pq.ParquetFile(path).iter_batches(batch_size=batch_size)
        elif fmt == "excel":
            batches = read_sheet(path, options.sheet, options.na_values).to_batches()
        else:
            csv_read = CsvRead.of(path, fmt, options)
            types = late_types(path, fmt, options).types | (column_types or {})
            options = csv_read.options
            batches = pacsv.open_csv(path, **csv_read.arrow_options(types))
            _check_text(path, batches.schema, options.encoding)
    except (pa.ArrowException, OSError) as exc:
        raise _error(path, fmt, exc, options, _names(path, options)) from exc

    def generate() -> Iterator[pa.RecordBatch]:
        try:
            for batch in batches:
                if csv_read is not None:
                    batch = csv_read.convert(batch, stream=True)
                for start in range(0, batch.num_rows, batch_size):
                    yield batch.slice(start, batch_size)
        except (pa.ArrowException, OSError) as exc:
            raise _error(path, fmt, exc, options, batches.schema.names) from exc

    return generate()
