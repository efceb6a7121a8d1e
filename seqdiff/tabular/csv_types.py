"""The column types of a CSV file, as all its rows need them.

The detections (`seqdiff.tabular.csv_sniff`) read the first 64 KiB of a file, and Arrow infers each
column's type from its first block (`ARROW_BLOCK`, 1 MiB). Arrow's stream reader then fails on a later
value that does not fit (fractions in a column of whole numbers, anything in a column empty so far),
after the batches before it were used; and a ZIP code ``01001`` further down a column of whole numbers
is read as ``1001``, silently, whole or streamed. `seqdiff impute` streams every file. So a file larger
than the detections' sample is read once more beforehand, once per file state, and the types all its
rows need are given to every read of it.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("zip,n\\n" + "94105,1\\n" * 150_000 + "01001,2.5\\n")
    >>> late_types(path, "csv", ReadOptions())
    LateTypes(types={'zip': DataType(string), 'n': DataType(double)}, codes=('zip',))
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.csv_sniff import SNIFF_BYTES, CsvRead
from seqdiff.tabular.read_options import ReadOptions, file_state, na_values_flag
from seqdiff.tabular.schema import MAX_LISTED_WORDS, NUMBER, few_words

ARROW_BLOCK = 1 << 20  # bytes: the block Arrow's CSV readers infer each column's type from
LATE_VALUE = re.compile(r"In CSV column #(\d+): CSV conversion error to ([^:]+): invalid value '(.*)'")
_WHOLE = r"^[+-]?\d+$"
_PADDED = r"^[+-]?0\d"  # a code: 01001 (ZIP), 007


@dataclass(frozen=True)
class LateTypes:
    """`types`: column name -> the type its later rows need; `codes`: those read as text because their
    whole numbers turn out to be codes (leading zeros, beyond a 64-bit integer)."""

    types: dict[str, pa.DataType]
    codes: tuple[str, ...] = ()


def late_types(path: Path, fmt: str, options: ReadOptions) -> LateTypes:
    """The `LateTypes` of the CSV file at `path` read with `options`: none for a file no larger than
    the detections' sample (`SNIFF_BYTES`). A word below a column's first block of numbers or dates (a
    placeholder, the header repeated) is a one-line SeqdiffError that names the `--na-values` reading
    it as missing."""
    state = file_state(path)
    if state[2] <= SNIFF_BYTES and path.suffix.lower() not in (".gz", ".bz2"):  # the detections saw it all
        return LateTypes({})
    return _settled(*state, fmt, replace(options, na_values=tuple(options.na_values)))


def late_message(name: str, held: str, words: list[str], na_values: tuple[str, ...] | list[str]) -> str:
    """What `words` below column `name`'s first block of `held` (numbers, dates or times) mean: the
    header repeated (files joined with their headers) or placeholders to read as missing."""
    if name in words:
        return (
            f"column {name!r} holds {held} but its own name further down: the header repeated inside the "
            "file (files joined with their headers?); delete those lines"
        )
    return (
        f"column {name!r} holds {held} in its first rows, then {', '.join(map(repr, words))}: to read "
        f"{'it' if len(words) == 1 else 'them'} as missing, {na_values_flag([*na_values, *words])}"
    )


def held_by(arrow_type: str) -> str:
    """ "dates or times" or "numbers": what a column of the type Arrow names `arrow_type` holds."""
    return "dates or times" if arrow_type.startswith(("timestamp", "date", "time")) else "numbers"


@functools.lru_cache(maxsize=4)
def _settled(path_name: str, mtime_ns: int, size: int, fmt: str, options: ReadOptions) -> LateTypes:
    read = CsvRead.of(Path(path_name), fmt, options)
    first = pacsv.open_csv(path_name, **read.arrow_options(None)).schema
    if len(set(first.names)) < len(first.names):
        return LateTypes({})  # types go by name: the reading names the duplicate as its error
    whole = [f.name for f in first if pa.types.is_integer(f.type)]
    types: dict[str, pa.DataType] = {name: pa.string() for name in whole}  # scanned as text below
    texts: dict[str, _WholeNumbers] = {}  # numbers in the first block, words further down: scanned alone
    while True:  # a round per column whose first block Arrow cannot read the rest in
        reader = pacsv.open_csv(path_name, **read.arrow_options(types))
        scans = {name: _WholeNumbers() for name in whole}
        try:
            for batch in reader:
                for name, scan in scans.items():
                    scan.add(batch.column(name), read.dialect[1])
            break
        except pa.ArrowInvalid as exc:
            found = LATE_VALUE.search(str(exc))
            name = found and reader.schema.names[int(found[1])]
            if not found or name in types:
                raise
            if found[2] == "null":
                types[name] = _type_of_values(path_name, read, name)
            elif found[2] == "bool":  # true / false, then other words: categories, as a whole read has them
                types[name] = pa.string()
            elif found[2] in ("double", "float"):
                texts[name], types[name] = _scan(path_name, read, name), pa.string()
            else:
                raise
    for name, scan in {**scans, **texts}.items():
        if scan.placeholders():
            words = list(scan.words)
            raise SeqdiffError(f"{path_name}: {late_message(name, 'numbers', words, read.options.na_values)}")
        settled = scan.settled()
        if settled is None:
            del types[name]
        else:
            types[name] = settled
    codes = tuple(name for name, scan in scans.items() if scan.settled() == pa.string() and not scan.words)
    return LateTypes(types, codes)


class _WholeNumbers:
    """What a column of whole numbers in its first block holds in all its rows, read as text: codes
    (some written with leading zeros, or beyond a 64-bit integer, as `csv_numbers.digit_codes` has
    them), fractions, and words (counted while there are at most MAX_LISTED_WORDS kinds)."""

    def __init__(self) -> None:
        self.codes = self.fractions = False
        self.cells = 0
        self.words: Counter[str] = Counter()

    def add(self, text: pa.Array, decimal: str) -> None:
        text = text.drop_null()
        self.cells += len(text)
        whole = pc.match_substring_regex(text, _WHOLE)
        if pc.all(whole).as_py() is not False:
            padded = pc.any(pc.match_substring_regex(text, _PADDED)).as_py()
            self.codes = self.codes or bool(padded) or not _casts(text, pa.int64())
            return
        written = text.filter(pc.invert(whole))
        number = pc.match_substring_regex(pc.replace_substring(written, decimal, "."), NUMBER)
        self.fractions = self.fractions or bool(pc.any(number).as_py())
        if len(self.words) <= MAX_LISTED_WORDS:
            counts = pc.value_counts(written.filter(pc.invert(number)))
            self.words.update(
                dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))
            )

    def placeholders(self) -> bool:
        """Whether its words are a few placeholders among numbers (`schema.few_words`)."""
        return few_words(len(self.words), sum(self.words.values()), self.cells)

    def settled(self) -> pa.DataType | None:
        """The type all its rows need: text for words (placeholders are the caller's error) or codes,
        float64 for fractions, None for whole numbers throughout (as the first block has them)."""
        if self.words or (self.codes and not self.fractions):
            return pa.string()
        return pa.float64() if self.fractions else None


def _as_text(path_name: str, read: CsvRead, name: str) -> Iterator[pa.Array]:
    """Column `name` of the file read as text, a batch at a time."""
    options = read.arrow_options({name: pa.string()})
    options["convert_options"].include_columns = [name]
    for batch in pacsv.open_csv(path_name, **options):
        yield batch.column(0)


def _scan(path_name: str, read: CsvRead, name: str) -> _WholeNumbers:
    """Column `name` scanned for words."""
    scan = _WholeNumbers()
    for text in _as_text(path_name, read, name):
        scan.add(text, read.dialect[1])
    return scan


def _type_of_values(path_name: str, read: CsvRead, name: str) -> pa.DataType:
    """The first of the types Arrow infers (integers, numbers, booleans, dates, times) that every value
    of column `name` fits, else text."""
    fitting = [pa.int64(), pa.float64(), pa.bool_(), pa.date32(), pa.timestamp("s")]
    for text in _as_text(path_name, read, name):
        values = pc.replace_substring(text, read.dialect[1], ".")
        fitting = [t for t in fitting if _casts(values, t)]
        if not fitting:
            return pa.string()
    return fitting[0]


def _casts(values: pa.Array, to: pa.DataType) -> bool:
    try:
        values.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True
