"""How a CSV file is written, found from its first 64 KiB unless `seqdiff.tabular.read_options.ReadOptions`
say: its encoding (`byte_order_encoding`: its byte-order mark's, else UTF-8), delimiter
(`detect_delimiter`: comma, semicolon, tab or pipe, or the one Excel's first line ``sep=;`` names),
decimal mark (`detect_decimal`), header line, a space after each delimiter, numbers with digit groups
or unit signs (`seqdiff.tabular.csv_numbers`) and dates in a local style (`seqdiff.tabular.csv_dates`).
`CsvRead` holds what was found and reads the file with Arrow so (`seqdiff.tabular.files`).

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("kg;sold\\n70,5;15.03.2024\\n")
    >>> read = CsvRead.of(path, "csv", ReadOptions())
    >>> read.dialect, read.dates
    ((';', ','), {'sold': '%d.%m.%Y'})
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.csv_dates import date_formats, to_dates
from seqdiff.tabular.csv_numbers import (
    NumberStyle,
    blank_to_null,
    decimal_mark,
    digit_codes,
    number_styles,
    numbers_named_by_numbers,
    to_numbers,
)
from seqdiff.tabular.read_options import (
    DELIMITERS,
    MAX_TITLE_LINES,
    ReadOptions,
    file_state,
    null_numbers,
    title_rows,
)

SNIFF_BYTES = 65_536
# Byte-order marks and the codecs that read them (and write them back); UTF-32's little-endian mark
# begins with UTF-16's, so it is looked for first.
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SEP_LINE = re.compile(r'"?sep=(.)"?\r?\n')
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")  # either decimal mark


def byte_order_encoding(start: bytes) -> str:
    """The encoding that text starting with the bytes `start` is read in: the one its byte-order mark
    names, else UTF-8.

    Example:
        >>> byte_order_encoding("a,b".encode("utf-16")), byte_order_encoding(b"a,b")
        ('utf-16', 'utf-8')
    """
    return next((name for mark, name in BYTE_ORDER_MARKS if start.startswith(mark)), "utf-8")


class _Sample(NamedTuple):
    """A CSV file's first `SNIFF_BYTES` (decompressed) as text, in the encoding it is read in."""

    text: str  # without a byte-order mark or Excel's ``sep=`` line
    whole: bool  # the sample is the whole file
    named_delimiter: str | None  # the one Excel's optional first line ``sep=;`` names
    encoding: str  # `ReadOptions.encoding`, else `byte_order_encoding`'s


def _sample_lines(path: Path, encoding: str | None) -> _Sample:
    """The `_Sample` of the file at `path`, read in `encoding` (None: `byte_order_encoding`); a one-line
    SeqdiffError when it is not text in that encoding."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            data = stream.read(SNIFF_BYTES + 1)
    except OSError as exc:  # a compressed file cut short, or not what its name says
        raise SeqdiffError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    whole, data = len(data) <= SNIFF_BYTES, data[:SNIFF_BYTES]
    encoding = encoding or byte_order_encoding(data[:4])
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        if whole or exc.start < len(data) - 4:  # not just a character cut at the sample's end
            raise SeqdiffError(
                f"{path}: not {encoding} text (byte 0x{data[exc.start]:02x} at offset {exc.start:,}); "
                "give its encoding, e.g. --encoding cp1252 (Windows, Western Europe)"
            ) from None
        text = data[: exc.start].decode(encoding)
    text = text.removeprefix("\ufeff")
    sep_line = _SEP_LINE.match(text)
    if sep_line:
        return _Sample(text[sep_line.end() :], whole, sep_line[1], encoding)
    return _Sample(text, whole, None, encoding)


def _fields(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def _filled(line: str, delimiter: str) -> int:
    """How many fields of `line` are not empty."""
    return sum(bool(f.strip()) for f in _fields(line, delimiter))


def _blank(line: str) -> bool:
    """A line of no fields or only empty ones (``,,`` where a spreadsheet exports an empty row)."""
    return not line.strip().strip("".join(DELIMITERS) + '"')


def _names_numbers(names: str, row: str, delimiter: str) -> bool:
    """Whether line `names` splits into as many fields as line `row` and names a number there."""
    named, values = _fields(names, delimiter), _fields(row, delimiter)
    return len(named) == len(values) > 1 and any(
        _NUMBER.fullmatch(v.strip()) and not _NUMBER.fullmatch(n.strip())
        for n, v in zip(named, values, strict=True)
    )


def _preamble(text: str, whole: bool, delimiter: str | None, fmt: str, path: str | Path) -> str:
    """The lines above the header at the top of sampled `text`, verbatim: lines that start with ``#`` (an
    instrument's or a lab system's notes), then a title (`title_rows`; a spreadsheet exports a titled
    sheet's blank cells as empty fields, ``,,``). The last ``#`` line
    stays, as the header, when it splits into as many fields as the next line and names a number there
    (``#CHROM,POS`` over ``1,20``, as in a VCF file). `delimiter` None: the one the other lines show
    (`_delimiter_in`).

    Example:
        >>> _preamble("# exported 2024-03-15\\n# units: C\\ntemp,site\\n3.5,a\\n", True, None, "csv", "t.csv")
        '# exported 2024-03-15\\n# units: C\\n'
        >>> _preamble("##format 4\\n#CHROM,POS\\n1,20\\n", True, None, "csv", "t.csv")
        '##format 4\\n'
        >>> _preamble("Sales Q3,,\\n,,\\nregion,units,price\\nnorth,3,2.5\\n", True, None, "csv", "t.csv")
        'Sales Q3,,\\n,,\\n'
    """
    lines = text.splitlines(keepends=True)
    notes = next((n for n, line in enumerate(lines) if not line.startswith("#")), len(lines))
    if notes == len(lines):
        return ""
    blank = next(
        (n for n in range(notes, min(len(lines), notes + MAX_TITLE_LINES + 1)) if _blank(lines[n])), None
    )
    header = (
        None if blank is None else next((n for n in range(blank, len(lines)) if not _blank(lines[n])), None)
    )
    delimiter = delimiter or _delimiter_in("".join(lines[header or notes :]), whole, fmt, path)
    if header is not None and title_rows(_filled(line, delimiter) for line in lines[notes : header + 1]):
        return "".join(lines[:header])  # the notes and a title
    if notes and _names_numbers(lines[notes - 1], lines[notes], delimiter):
        notes -= 1  # the last note is the header
    return "".join(lines[:notes])


def _records(text: str, whole: bool, delimiter: str) -> list[list[str]]:
    """The sampled records (blank lines skipped; a cut last one dropped)."""
    records = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]
    if not whole and len(records) > 1:
        records = records[:-1]
    return records


def _spaced(rows: list[list[str]]) -> bool:
    """Whether sampled rows write a space after each delimiter (``39, State-gov``, as UCI's adult.data
    does): 90% of their fields after the first start with one."""
    after = [field for row in rows for field in row[1:]]
    return bool(after) and sum(field.startswith(" ") for field in after) >= 0.9 * len(after)


def detect_delimiter(path: str | Path, fmt: str = "csv", options: ReadOptions | None = None) -> str:
    """The delimiter of a CSV file: the one of comma, semicolon, tab and pipe that splits every line of
    its first 64 KiB into the same number, two or more, of fields. When several do, a one-line
    SeqdiffError names them; when none does (one column, or ragged rows), the extension's: tab for
    `fmt` "tsv", else comma.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("a|b\\n1|x\\n")
        >>> detect_delimiter(path)
        '|'
        >>> _ = path.write_text("a,b;c\\n1,2;3\\n")
        >>> detect_delimiter(path)
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: ...t.csv: cannot tell the delimiter: comma (2 fields per line) and semicolon (2 fields per line) both fit; give --delimiter
    """
    sample = _sample_lines(Path(path), options and options.encoding)
    if sample.named_delimiter:
        return sample.named_delimiter
    text = sample.text[len(_preamble(sample.text, sample.whole, None, fmt, path)) :]
    return _delimiter_in(text, sample.whole, fmt, path)


def _delimiter_in(text: str, whole: bool, fmt: str, path: str | Path) -> str:
    """`detect_delimiter` on the sampled text of the file at `path`."""
    fits = {}
    for delimiter in DELIMITERS:
        counts = {len(r) for r in _records(text, whole, delimiter)}
        if len(counts) == 1 and min(counts) >= 2:
            fits[delimiter] = min(counts)
    if len(fits) == 1:
        return next(iter(fits))
    if len(fits) > 1:
        named = [f"{DELIMITERS[d]} ({n} fields per line)" for d, n in fits.items()]
        raise SeqdiffError(
            f"{path}: cannot tell the delimiter: {', '.join(named[:-1])} and {named[-1]} both fit; "
            "give --delimiter"
        )
    return "\t" if fmt == "tsv" else ","


def detect_decimal(path: str | Path, delimiter: str, options: ReadOptions | None = None) -> str:
    """The decimal mark of a CSV file split by `delimiter`: a comma when, in its first 64 KiB, a column's
    values (besides missing ones) are all numbers and some are written like ``3,14`` (not only like
    ``1,250``, which could be a thousands group); else a point. When another column's are written like
    ``3.14``, a one-line SeqdiffError names both (give --decimal).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("kg;n\\n70,5;1\\n-3,25;2\\n")
        >>> detect_decimal(path, ";")
        ','
        >>> _ = path.write_text("kg;m\\n70,5;1.5\\n")
        >>> detect_decimal(path, ";")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: ...t.csv: cannot tell the decimal mark: column 'kg' writes 70,5 and column 'm' 1.5; give --decimal
    """
    options = options or ReadOptions()
    sample = _sample_lines(Path(path), options.encoding)
    text = sample.text[len(_preamble(sample.text, sample.whole, delimiter, "csv", path)) :]
    header, *rows = _records(text, sample.whole, delimiter) or [[]]
    return decimal_mark(header, rows, set(options.null_values()), str(path))


@dataclass(frozen=True)
class CsvRead:
    """How one CSV file is read: its dialect, its columns of numbers written with digit groups or unit
    signs (name -> `NumberStyle`, `number_styles`) and of dates in a local style (`date_formats`),
    read as text and then converted (`to_numbers`, `to_dates`), and its column names when not the
    header's: 1, 2, ... without a header (`ReadOptions.header`), without the spaces in a file with a
    space after each delimiter (`_spaced`); and the lines above its header (`_preamble`: ``#`` notes, a
    title), skipped and written back at the top of a CSV output."""

    path: Path
    options: ReadOptions
    dialect: tuple[str, str]
    styles: dict[str, NumberStyle]
    skip_rows: int = 0
    names: tuple[str, ...] | None = None  # the column names, when not the header's as Arrow reads it
    numbered: tuple[str, ...] = ()  # the header's numbers over columns of numbers (`numbers_in_header`)
    dates: dict[str, str] = field(default_factory=dict)  # name -> strptime format (`date_formats`)
    preamble: str = ""  # the lines above the header (`_preamble`), as the file writes them
    codes: tuple[str, ...] = ()  # whole numbers that are codes, read as text (`digit_codes`)

    @classmethod
    def of(cls, path: Path, fmt: str, options: ReadOptions) -> CsvRead:
        """What the file at `path` holds, as `options` leave it to detection. Kept for the file's
        state (`file_state`): a command opens a file several times (its sample, the imputation, the
        output's dialect) and detects once."""
        return _detect(*file_state(path), fmt, replace(options, na_values=tuple(options.na_values)))

    def arrow_options(self, column_types: dict[str, pa.DataType] | None) -> dict[str, Any]:
        delimiter, decimal = self.dialect
        as_text = {name: pa.string() for name in [*self.styles, *self.dates, *self.codes]}
        return {
            # Arrow skips a UTF-8 byte-order mark itself, and reads UTF-8 without transcoding.
            "read_options": pacsv.ReadOptions(
                encoding="utf-8" if self.options.encoding == "utf-8-sig" else self.options.encoding,
                skip_rows=self.skip_rows,
                column_names=self.names,
            ),
            # Quoted text may hold line breaks (a spreadsheet's notes); reading them costs nothing measurable.
            "parse_options": pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            "convert_options": pacsv.ConvertOptions(
                column_types=as_text | (column_types or {}),
                null_values=self.options.null_values(),
                strings_can_be_null=True,
                decimal_point=decimal,
            ),
        }

    def convert(self, table: pa.Table | pa.RecordBatch, stream: bool) -> pa.Table | pa.RecordBatch:
        """`table` with its styled columns as numbers: of the type their sampled values fit when read
        in a `stream` (its batches share a schema), else of the type all their values fit; its date
        columns as dates; in a spaced file, its text without the spaces after the delimiters, and
        blank fields missing; numbers equal to a number among ``na_values`` missing (`null_numbers`)."""
        for i, column_field in enumerate(table.schema):
            name, column = column_field.name, table.column(i)
            read = column
            if name in self.styles:
                column = to_numbers(
                    column,
                    name,
                    self.styles[name],
                    self.dialect[1],
                    stream=stream,
                    source=str(self.path),
                    na_values=self.options.na_values,
                )
            elif name in self.dates:
                column = to_dates(column, name, self.dates[name], str(self.path), self.options.na_values)
            elif self.names is not None and pa.types.is_string(column.type):
                column = blank_to_null(pc.utf8_ltrim(column, " "))
            column = null_numbers(column, self.options.na_values)
            if column is not read:
                table = table.set_column(i, name, column)
        return table


@functools.lru_cache(maxsize=4)
def _detect(path_name: str, mtime_ns: int, size: int, fmt: str, options: ReadOptions) -> CsvRead:
    """`CsvRead.of` of the file at `path_name`, keyed by its modification time and size as well."""
    path = Path(path_name)
    # Read once: a one-line error for a file that is not in the encoding, then the detections' lines.
    text, whole, named, encoding = _sample_lines(path, options.encoding)
    options = replace(options, encoding=encoding)
    preamble = _preamble(text, whole, options.delimiter or named, fmt, path)
    text = text[len(preamble) :]
    delimiter = options.delimiter or named or _delimiter_in(text, whole, fmt, path)
    header, *rows = _records(text, whole, delimiter) or [[]]
    if not options.header:
        header, rows = [str(j) for j in range(1, len(header) + 1)], [header, *rows]
    spaced = _spaced(rows)
    names = tuple(name.strip() for name in header) if spaced or not options.header else None
    header = list(names) if names is not None else header
    missing = set(options.null_values())
    decimal = options.decimal or decimal_mark(header, rows, missing, str(path))
    codes = digit_codes(header, rows, missing)
    numeric = {
        n: s for n, s in number_styles(header, rows, decimal, missing, plain=True).items() if n not in codes
    }
    # Arrow reads plain numbers itself, but not past a spaced file's blank fields: read those as text.
    styles = {name: s for name, s in numeric.items() if spaced or s.group or s.prefix or s.suffix}
    numbered = tuple(numbers_named_by_numbers(header, numeric, decimal)) if options.header else ()
    # Lines before the first record: Excel's ``sep=`` line, the preamble, and the header when named here.
    skip = int(named is not None) + preamble.count("\n") + (names is not None and options.header)
    dates = {name: f for name, f in date_formats(header, rows, missing).items() if name not in codes}
    return CsvRead(
        path, options, (delimiter, decimal), styles, skip, names, numbered, dates, preamble, tuple(codes)
    )
