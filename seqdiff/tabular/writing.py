"""Write a table as Parquet, CSV or Excel, whole (`write_table`) or batch by batch (`TableWriter`),
atomically.

The output's name picks the format (`output_format`): ``.parquet`` / ``.pq``, ``.csv`` / ``.tsv`` /
``.txt`` (optionally ``.gz`` or ``.bz2`` compressed), or ``.xlsx`` (one sheet,
`seqdiff.tabular.excel.SheetWriter`). A CSV output is written in the `CsvDialect` given:
`output_dialect` hands back a CSV input's delimiter, decimal mark, encoding, header line (or none) and
the lines above it (``#`` notes, a title), so a semicolon file with decimal commas from a European
spreadsheet comes back as one. Missing cells are empty fields; numbers are written in their shortest
exact form (``70.50`` comes back as ``70.5``).

Example:
    >>> import tempfile
    >>> import pyarrow as pa
    >>> out = Path(tempfile.mkdtemp()) / "t.csv"
    >>> write_table(pa.table({"kg": [70.5, None], "job": ["clerk", "nurse"]}), out, CsvDialect(";", ","))
    >>> print(out.read_text().strip())
    "kg";"job"
    "70,5";"clerk"
    ;"nurse"
"""

from __future__ import annotations

import codecs
import io
from contextlib import ExitStack, suppress
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from seqdiff.atomic import atomic_path
from seqdiff.errors import SeqdiffError
from seqdiff.tabular.codecs import fractional
from seqdiff.tabular.excel import SheetWriter
from seqdiff.tabular.files import csv_dialect, file_format
from seqdiff.tabular.read_options import ReadOptions

COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2"}
OUTPUT_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".txt", ".xlsx", ".xlsm")


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV output is written: the field `delimiter`, the `decimal` mark of numbers, the text
    `encoding` (a Python codec name), whether it starts with a `header` line, and the `preamble` lines
    above it (a CSV input's ``#`` notes and title, as it wrote them)."""

    delimiter: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    header: bool = True
    preamble: str = ""


def output_format(path: str | Path) -> str:
    """ "parquet", "csv" or "excel", from the output's name; a one-line SeqdiffError for any other name.

    Example:
        >>> output_format("filled.csv.gz"), output_format("filled.pq"), output_format("filled.xlsx")
        ('csv', 'parquet', 'excel')
        >>> output_format("filled.json")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: filled.json: name the output .parquet, .pq, .csv, .tsv, .txt or .xlsx (.csv.gz and .tsv.gz are compressed)
    """
    fmt = None
    with suppress(SeqdiffError):
        fmt = file_format(Path(path), exists=False)
    if fmt is None or Path(path).suffix.lower() not in (*OUTPUT_SUFFIXES, *COMPRESSIONS):
        raise SeqdiffError(
            f"{path}: name the output .parquet, .pq, .csv, .tsv, .txt or .xlsx (.csv.gz and .tsv.gz are "
            "compressed)"
        )
    return fmt if fmt in ("parquet", "excel") else "csv"


def output_dialect(
    out_path: str | Path, in_path: str | Path | None = None, options: ReadOptions | None = None
) -> CsvDialect:
    """The dialect of the CSV output `out_path`: tab-separated for a ``.tsv`` name, else the delimiter of
    the CSV input `in_path` (read with `options`), or a comma; the input's decimal mark, encoding,
    header line or none and the lines above it, or a point, UTF-8 and a header (also for a Parquet or
    Excel input)."""
    if in_path is None or file_format(Path(in_path)) in ("parquet", "excel"):
        dialect = CsvDialect()
    else:
        dialect = CsvDialect(*csv_dialect(in_path, options))
    if ".tsv" in [s.lower() for s in Path(out_path).suffixes[-2:]]:
        dialect = replace(dialect, delimiter="\t")
    return dialect


def _with_decimal(table: pa.Table, decimal: str) -> pa.Table:
    """`table` with its floating-point columns as text written with the `decimal` mark."""
    if decimal == ".":
        return table
    for i, field in enumerate(table.schema):
        if fractional(field.type):
            text = pc.replace_substring(table.column(i).cast(pa.string()), ".", decimal)
            table = table.set_column(i, field.name, text)
    return table


class _Encoded(io.RawIOBase):
    """A binary sink that writes the UTF-8 text it is given into `raw` in `encoding`."""

    def __init__(self, raw: pa.NativeFile, encoding: str):
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._encoder = codecs.getincrementalencoder(encoding)()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        text = self._decoder.decode(bytes(data))
        self._raw.write(self._encoder.encode(text))
        return len(data)


class TableWriter:
    """Write tables of one schema, in order, into the file `path`, atomically: it appears, whole, when the
    ``with`` block ends without an error. The format follows the name (`output_format`; a CSV file in
    `dialect`). The first table written gives the schema.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "t.parquet"
        >>> with TableWriter(out) as writer:
        ...     for part in ([1, 2], [3]):
        ...         writer.write(pa.table({"x": part}))
        >>> pq.read_table(out)["x"].to_pylist()
        [1, 2, 3]
    """

    def __init__(self, path: str | Path, dialect: CsvDialect | None = None):
        self.path = Path(path)
        self.format = output_format(path)
        self.dialect = dialect or CsvDialect()
        self._stack = ExitStack()
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | SheetWriter | None = None

    def __enter__(self) -> TableWriter:
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        return self

    def _open(self, schema: pa.Schema) -> pq.ParquetWriter | pacsv.CSVWriter | SheetWriter:
        if self.format == "parquet":
            return self._stack.enter_context(pq.ParquetWriter(self._tmp, schema))
        if self.format == "excel":
            return self._stack.enter_context(SheetWriter(self._tmp))
        compression = COMPRESSIONS.get(self.path.suffix.lower())
        sink = self._stack.enter_context(pa.output_stream(str(self._tmp), compression=compression))
        if codecs.lookup(self.dialect.encoding).name != "utf-8":
            sink = self._stack.enter_context(pa.PythonFile(_Encoded(sink, self.dialect.encoding), mode="w"))
        if self.dialect.preamble:  # in the rows' line endings; transcoded, as the rows are, by _Encoded
            sink.write("\n".join(self.dialect.preamble.splitlines()).encode("utf-8") + b"\n")
        options = pacsv.WriteOptions(delimiter=self.dialect.delimiter, include_header=self.dialect.header)
        text_schema = _with_decimal(schema.empty_table(), self.dialect.decimal).schema
        return self._stack.enter_context(pacsv.CSVWriter(sink, text_schema, write_options=options))

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            check_writable(table.schema, self.path)
            self._writer = self._open(table.schema)
        if self.format == "csv":
            table = _with_decimal(table, self.dialect.decimal)
        try:
            self._writer.write_table(table)
        except UnicodeEncodeError as err:
            raise SeqdiffError(
                f"{self.path}: {err.object[err.start : err.end]!r} cannot be written in "
                f"{self.dialect.encoding}; write Parquet or a UTF-8 CSV file"
            ) from None

    def __exit__(self, *exc: object) -> None:
        self._stack.__exit__(*exc)


def nested_columns(schema: pa.Schema) -> list[str]:
    """The columns of `schema` that hold nested values (lists, structs, maps), which CSV cannot, named
    with their types."""
    return [f"{f.name!r} ({f.type})" for f in schema if pa.types.is_nested(f.type)]


def check_writable(schema: pa.Schema, path: str | Path) -> None:
    """A one-line SeqdiffError when the output `path` names a CSV file and `schema` has nested columns
    (`nested_columns`)."""
    nested = nested_columns(schema)
    if nested and output_format(path) == "csv":
        raise SeqdiffError(
            f"{path}: column(s) {', '.join(nested)} hold nested values, which CSV cannot; name a Parquet "
            "output"
        )


def write_table(table: pa.Table, path: str | Path, dialect: CsvDialect | None = None) -> None:
    """Write `table` to `path` atomically, as its name says (`output_format`; a CSV file in `dialect`)."""
    with TableWriter(path, dialect) as writer:
        writer.write(table)
