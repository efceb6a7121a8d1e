"""Long CSV files whose first rows do not show a column's type. Arrow's stream reader fixes each column's
type in its first block (1 MiB) and failed on the first value beyond it that did not fit; `seqdiff
impute` reads every file as a stream (its sample for the fit, then the imputation), so such a file
could not be imputed at all, whatever its size, while a whole read of it worked. Codes with leading
zeros below the first block were read as numbers, silently (ZIP code 01001 as 1001)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.csv_types import ARROW_BLOCK
from seqdiff.tabular.files import digit_code_columns, iter_record_batches, read_table
from tests.test_bad_input import assert_one_line_error, seqdiff

TINY = ["--max-steps", "5", "--no-early-stopping"]
ROWS = 150_000  # 1.3-2 MB
LATE = 140_000


def long_csv(
    path: Path, late_column: list[str], header: str = "late", sep: str = ",", decimal: str = "."
) -> Path:
    """A file of ROWS rows: a column of numbers with 10% missing cells, a category, and `late_column`."""
    rng = np.random.default_rng(0)
    x = [f"{v:.2f}".replace(".", decimal) if v > -1.3 else "" for v in rng.normal(size=ROWS)]
    lines = [sep.join(["x", "c", header])] + [
        sep.join([x[i], "ab"[i % 2], late_column[i]]) for i in range(ROWS)
    ]
    path.write_text("\n".join(lines) + "\n")
    assert len("\n".join(lines[: LATE + 1]).encode()) > ARROW_BLOCK  # row LATE lies past the first block
    return path


def streamed(path: Path, **options) -> pa.Table:
    return pa.Table.from_batches(list(iter_record_batches(path, 10_000, **options)))


CASES = {
    # whole numbers for the first 140,000 rows, then readings with fractions
    "fractions_late": ([str(i % 50) for i in range(LATE)] + ["12.5"] * (ROWS - LATE), pa.float64()),
    # a field nobody filled in for months, then numbers (a sensor added later)
    "empty_then_numbers": ([""] * LATE + [str(i % 7) for i in range(ROWS - LATE)], pa.int64()),
    "empty_then_fractions": ([""] * LATE + ["0.25"] * (ROWS - LATE), pa.float64()),
    "empty_then_words": ([""] * LATE + ["red", "blue"] * ((ROWS - LATE) // 2), pa.string()),
    "empty_then_booleans": ([""] * LATE + ["true", "false"] * ((ROWS - LATE) // 2), pa.bool_()),
    "empty_then_dates": ([""] * LATE + ["2024-03-05"] * (ROWS - LATE), pa.date32()),
    "true_false_then_words": (["true", "false"] * (LATE // 2) + ["unsure"] * (ROWS - LATE), pa.string()),
    # room numbers, then the annex's rooms B1 .. B40: text, not a column of numbers with placeholders
    "numbers_then_many_words": (
        [str(100 + i % 300) for i in range(LATE)] + [f"B{i % 40}" for i in range(ROWS - LATE)],
        pa.string(),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_stream_reads_a_late_type_as_a_whole_read_does(tmp_path: Path, case: str):
    values, expected = CASES[case]
    src = long_csv(tmp_path / f"{case}.csv", values)
    stream, whole = streamed(src), read_table(src)
    assert stream.schema.field("late").type == expected
    assert stream.column("late").to_pylist() == whole.column("late").cast(expected).to_pylist()
    assert stream.column("x").equals(whole.column("x"))


def test_late_fractions_in_a_decimal_comma_file(tmp_path: Path):
    values = [str(i % 50) for i in range(LATE)] + ["12,5"] * (ROWS - LATE)
    src = long_csv(tmp_path / "eu.csv", values, sep=";", decimal=",")
    late = streamed(src).column("late")
    assert late.type == pa.float64() and late[-1].as_py() == 12.5


def test_the_cli_imputes_a_file_with_late_fractions(tmp_path: Path):
    """It was `column 'late' holds numbers in its first rows, then '12.5': to read it as missing, ...`:
    a number read as a word, and the advice to drop it."""
    src = long_csv(tmp_path / "readings.csv", CASES["fractions_late"][0])
    out = tmp_path / "out.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.schema.field("late").type == pa.float64() and table.column("late")[-1].as_py() == 12.5
    assert table.column("x").null_count == 0


def test_a_late_word_is_named_before_any_work(tmp_path: Path):
    """A placeholder below the first block stays an error (the file's own flag reads it), now raised when
    the stream opens, before a fit, and worded for the column's type."""
    values = [f"2024-01-{1 + i % 28:02d}" for i in range(ROWS)]
    values[LATE] = "unknown"
    src = long_csv(tmp_path / "dates.csv", values, header="day")
    with pytest.raises(
        SeqdiffError, match="column 'day' holds dates or times in its first rows, then 'unknown'"
    ):
        iter_record_batches(src)
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "o.csv"), *TINY)
    assert_one_line_error(result, "then 'unknown': to read it as missing, --na-values")
    assert "fitting" not in result.stderr


def test_codes_with_leading_zeros_below_the_first_block_are_kept_as_written(tmp_path: Path):
    """Addresses sorted by state: Alaska's ZIP codes (995..) fill the first rows, Connecticut's (06..)
    come later. They were read as numbers, 06103 written back as 6103, by whole reads and streams alike."""
    values = [str(99501 + i % 400) for i in range(LATE)] + ["06103"] * (ROWS - LATE)
    src = long_csv(tmp_path / "addresses.csv", values, header="zip")
    for table in (streamed(src), read_table(src)):
        assert table.schema.field("zip").type == pa.string()
        assert table.column("zip")[-1].as_py() == "06103" and table.column("zip")[0].as_py() == "99501"
    assert digit_code_columns(src) == ["zip"]
    out = tmp_path / "out.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "'zip'" in result.stderr  # reported as codes, with the ones the first 64 KiB show
    assert out.read_text().rstrip().endswith(',"06103"')  # text, as written


def test_a_late_word_among_whole_numbers_is_named_before_any_work(tmp_path: Path):
    values = [str(i % 50) for i in range(ROWS)]
    values[LATE] = "n.d."
    src = long_csv(tmp_path / "counts.csv", values, header="count")
    with pytest.raises(SeqdiffError, match="column 'count' holds numbers in its first rows, then 'n.d.'"):
        read_table(src)
    values[LATE] = "count"
    src = long_csv(tmp_path / "joined.csv", values, header="count")
    with pytest.raises(SeqdiffError, match="its own name further down: the header repeated"):
        iter_record_batches(src)


def test_a_code_past_the_detections_sample_in_a_file_of_one_block(tmp_path: Path):
    """160 KB: one block for Arrow, but past the 64 KiB the detections read."""
    src = tmp_path / "mid.csv"
    src.write_text("zip,n\n" + "94105,1\n" * 20_000 + "01001,2\n")
    assert read_table(src).column("zip")[-1].as_py() == "01001"
    assert streamed(src).column("zip")[-1].as_py() == "01001"


def test_late_words_in_a_column_of_fractions(tmp_path: Path):
    """A lab's readings with two kinds of placeholder further down are named together (the stream named
    the first it met); many kinds of words make the column text, as a whole read has it."""
    values = [f"{i % 50}.5" for i in range(ROWS)]
    values[LATE], values[LATE + 5] = "n.d.", "<0.1"
    src = long_csv(tmp_path / "lab.csv", values, header="level")
    for read in (read_table, iter_record_batches):
        with pytest.raises(
            SeqdiffError, match=r"then 'n.d.', '<0.1': to read them as missing, .* n.d. '<0.1'$"
        ):
            read(src)
    values[LATE:] = [f"B{i % 40}" for i in range(ROWS - LATE)]
    src = long_csv(tmp_path / "rooms.csv", values, header="level")
    assert (
        streamed(src).schema.field("level").type == read_table(src).schema.field("level").type == pa.string()
    )


def test_a_small_compressed_file_of_many_rows(tmp_path: Path):
    """2.4 KB of gzip, 1.6 MB of rows: the file's size on disk does not say how much the detections saw."""
    src = tmp_path / "repeated.csv.gz"
    with gzip.open(src, "wt") as f:
        f.write("zip,n\n" + "94105,1\n" * 200_000 + "01001,2.5\n")
    assert src.stat().st_size < 65_536
    for table in (streamed(src), read_table(src)):
        assert table.column("zip")[-1].as_py() == "01001" and table.column("n")[-1].as_py() == 2.5


def test_a_long_file_with_a_duplicate_column_name_is_one_line(tmp_path: Path):
    """The scan looks columns up by name: it raised a KeyError on two columns named alike."""
    src = tmp_path / "dup.csv"
    src.write_text("a,a,b\n" + "".join(f"{i},{i % 7},x\n" for i in range(100_000)))
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "o.csv"), *TINY)
    assert_one_line_error(result, "dup.csv: duplicate column name(s): 'a'")
