"""How a table file is read, declared once: `ReadOptions`, and the ``seqdiff`` flags that set them
(`add_read_flags`, read back by `read_options`). `seqdiff.tabular.files` reads files with them.
"""

from __future__ import annotations

import argparse
import codecs
import math
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from seqdiff.errors import SeqdiffError

# Cells a CSV file spells missing besides empty ones: the list (UCI adult writes "?") and the
# spellings pandas and Arrow read as missing by default.
NA_VALUES: tuple[str, ...] = ("?", "-", "NA", "N/A", "n/a", "null", "NULL", "NaN", "nan")
# Excel's error values, a formula that could not be computed: missing in a workbook, and in the CSV
# files Excel exports (whatever ``--na-values`` says).
ERROR_VALUES: tuple[str, ...] = ("#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!")
DELIMITERS: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# A title above a table's header (a report's title and subtitle, then a blank row): this many lines at most.
MAX_TITLE_LINES = 5
DECIMAL_MARKS = (".", ",")


@dataclass(frozen=True)
class ReadOptions:
    """How a table file is read: a CSV file all of these; an Excel workbook `na_values` and `sheet`; a
    Parquet file none (it has types and nulls of its own).

    `na_values`: the fields read as missing besides empty ones; `delimiter`: one character, or None to
    detect it (`seqdiff.tabular.csv_sniff.detect_delimiter`); `decimal`: the decimal mark, "." or ",", or
    None to detect it (`detect_decimal`); `encoding`: the text encoding (a Python codec name), or None
    for the one the file's byte-order mark names, else UTF-8 (`byte_order_encoding`); `header`: whether
    the first line names the columns (without, they are named 1, 2, ...); `sheet`: a workbook's sheet
    (None: the first).

    Example:
        >>> ReadOptions(na_values=("?",)).null_values()[:4]
        ['', ' ', '?', '#N/A']
    """

    na_values: tuple[str, ...] = NA_VALUES
    delimiter: str | None = None
    decimal: str | None = None
    encoding: str | None = None
    header: bool = True
    sheet: str | None = None

    def null_values(self) -> list[str]:
        """Arrow's ``null_values``: empty, a lone space, each token and Excel error value, and each of
        them after a space (``a, ?, b``)."""
        tokens = [t for t in dict.fromkeys([*self.na_values, *ERROR_VALUES]) if t.strip()]
        return ["", " ", *tokens, *(f" {t}" for t in tokens)]


def title_rows(filled: Iterable[int]) -> int:
    """How many rows at the top of a table, with `filled` non-empty cells each (0: a blank row), stand
    above its header as a title: at most MAX_TITLE_LINES rows of one cell (a report's title and
    subtitle), then blank rows, then the header, of two cells or more. 0 when the rows do not start so.
    Read lazily: only the rows up to the header.

    Example:
        >>> title_rows([1, 1, 0, 3, 3]), title_rows([1, 3, 3]), title_rows([1, 0, 1]), title_rows([0, 0, 2])
        (3, 0, 0, 2)
    """
    titles = blanks = 0
    for count in filled:
        if count == 0:
            blanks += 1
        elif blanks:
            return titles + blanks if count >= 2 else 0
        elif count == 1 and titles < MAX_TITLE_LINES:
            titles += 1
        else:
            return 0
    return 0


def shell_word(word: str) -> str:
    """`word` quoted for a POSIX shell on one line: ANSI-C quoting (``$'a\\nb'``) when it holds a line
    break or a tab, which plain quotes would carry onto a second line.

    Example:
        >>> shell_word("n.d."), shell_word("<0.5"), shell_word("a\\nb")
        ('n.d.', "'<0.5'", "$'a\\\\nb'")
    """
    if not any(c in word for c in "\n\r\t"):
        return shlex.quote(word)
    escaped = word.replace("\\", "\\\\").replace("'", "\\'")
    return "$'" + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "'"


def na_values_flag(tokens: Iterable[str]) -> str:
    """``--na-values`` with `tokens`, each once and in order, as a shell reads them (`shell_word`).

    Example:
        >>> na_values_flag([*NA_VALUES, "<0.5", "NA"])
        "--na-values '?' - NA N/A n/a null NULL NaN nan '<0.5'"
    """
    return "--na-values " + " ".join(map(shell_word, dict.fromkeys(tokens)))


def null_numbers(column: pa.ChunkedArray | pa.Array, na_values: Sequence[str]) -> pa.ChunkedArray | pa.Array:
    """A numeric `column` with its numbers equal to a number among `na_values` missing: ``-999`` reads
    a field written ``-999.0`` or a workbook's number cell as missing too, not only the text ``-999``.
    Other columns are returned as they are.

    Example:
        >>> null_numbers(pa.array([12.5, -999.0, 3.0]), ["NA", "-999"]).to_pylist()
        [12.5, None, 3.0]
    """
    integers = pa.types.is_integer(column.type)
    if not (integers or pa.types.is_floating(column.type)):
        return column
    numbers = []
    for token in na_values:
        try:
            number = float(token)
        except ValueError:
            continue
        if math.isfinite(number) and (number.is_integer() or not integers):
            numbers.append(number)
    if not numbers:
        return column
    hit = pc.is_in(column, value_set=pa.array(numbers, pa.float64()).cast(column.type))
    return pc.if_else(hit, pa.scalar(None, column.type), column)


def add_read_flags(parser: argparse.ArgumentParser) -> None:
    """``--na-values``, ``--delimiter``, ``--decimal``, ``--encoding``, ``--no-header`` and ``--sheet``:
    the `ReadOptions` of a CSV or Excel input."""
    parser.add_argument(
        "--na-values",
        nargs="*",
        metavar="TOKEN",
        help="CSV input: the fields read as missing besides empty ones and Excel's error values "
        f"(#N/A, #DIV/0!, ...); replaces the default list ({' '.join(NA_VALUES)}); give none for "
        "empty fields only",
    )
    parser.add_argument(
        "--delimiter",
        metavar="CHAR",
        help="CSV input: the field delimiter, one character or 'tab' (default: detected among "
        "comma, semicolon, tab and pipe)",
    )
    parser.add_argument(
        "--decimal",
        choices=DECIMAL_MARKS,
        metavar="MARK",
        help="CSV input: the decimal mark of numbers, . or , (default: detected; a comma when a "
        "column's numbers are written like 3,14)",
    )
    parser.add_argument(
        "--encoding",
        help="CSV input: the text encoding (default: the one its byte-order mark names, else utf-8; "
        "e.g. cp1252 for Windows files from Western Europe, latin-1)",
    )
    parser.add_argument(
        "--no-header",
        action="store_true",
        help="CSV input: the first line is data, not column names; the columns are named 1, 2, ... "
        "and a CSV output has no header line either",
    )
    parser.add_argument("--sheet", help="Excel input: the sheet to read (default: the first)")


def file_state(path: str | Path) -> tuple[str, int, int]:
    """The path as given, the file's modification time (ns) and size: the key of a cached read of
    the file, so that a changed file is read again. FileNotFoundError for a missing file.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("a\\n1\\n")
        >>> file_state(path)[2]
        4
    """
    stat = Path(path).stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def read_options(args: argparse.Namespace) -> ReadOptions:
    """The `ReadOptions` of `add_read_flags`' flags (a one-line SeqdiffError for a bad delimiter).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_read_flags(parser)
        >>> read_options(parser.parse_args(["--na-values", "?", "--delimiter", "tab"]))
        ReadOptions(na_values=('?',), delimiter='\\t', decimal=None, encoding=None, header=True, sheet=None)
    """
    delimiter = "\t" if args.delimiter == "tab" else args.delimiter
    if delimiter is not None and (len(delimiter) != 1 or delimiter in "\r\n\"'"):
        raise SeqdiffError(f"--delimiter must be one character (or 'tab'), not {args.delimiter!r}")
    na_values = NA_VALUES if args.na_values is None else tuple(args.na_values)
    try:
        if args.encoding is not None:
            codecs.lookup(args.encoding)
    except LookupError:
        raise SeqdiffError(
            f"--encoding: unknown encoding {args.encoding!r} (e.g. utf-8, cp1252, latin-1)"
        ) from None
    return ReadOptions(na_values, delimiter, args.decimal, args.encoding, not args.no_header, args.sheet)
