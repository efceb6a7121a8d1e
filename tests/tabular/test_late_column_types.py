"""Long CSV files whose first rows do not show a column's type. Arrow's stream reader fixes each column's
type in its first block (1 MiB) and failed on the first value beyond it that did not fit; `seqdiff
impute` reads every file as a stream (its sample for the fit, then the imputation), so such a file
could not be imputed at all, whatever its size, while a whole read of it worked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.files import ARROW_BLOCK, iter_record_batches, read_table
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
