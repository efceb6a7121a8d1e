"""Numbers written with digit groups in CSV files (``1,234.5``, ``1.234,5``, ``1 234,5``): read as
numbers, whole and streamed, and imputed; a grouped column with a stray word is one line naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.csv_numbers import decimal_mark, grouped_columns
from seqdiff.tabular.files import iter_record_batches, read_table
from seqdiff.tabular.read_options import NA_VALUES
from tests.test_bad_input import assert_one_line_error, seqdiff

TINY = ["--max-steps", "5", "--no-early-stopping"]


def amounts(rows: int = 80) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.round(rng.uniform(10, 2_000_000, rows), 2)


# (delimiter, decimal mark, group separator, how a spreadsheet in that locale writes 1234567.5)
LOCALES = {
    "us": (",", ".", ",", '"1,234,567.5"'),
    "de": (";", ",", ".", "1.234.567,5"),
    "fr": (";", ",", "\u202f", "1\u202f234\u202f567,5"),
    "ch": (";", ".", "'", "1'234'567.5"),
}


def grouped(value: float, decimal: str, group: str) -> str:
    text = f"{value:,.2f}".replace(",", "\0").replace(".", decimal).replace("\0", group)
    return f'"{text}"' if group == "," else text


def write_locale(path: Path, locale: str, values: np.ndarray) -> Path:
    sep, decimal, group, _ = LOCALES[locale]
    lines = [f"income{sep}size{sep}city"]
    for i, v in enumerate(values):
        size = f"{1.5 + i % 7}".replace(".", decimal)
        income = "" if i % 5 == 0 else grouped(v, decimal, group)
        lines.append(f"{income}{sep}{size}{sep}{['Paris', 'Lyon'][i % 2]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("locale", LOCALES)
def test_grouped_numbers_are_read_as_numbers_whole_and_streamed(locale: str, tmp_path: Path) -> None:
    values = amounts()
    src = write_locale(tmp_path / "t.csv", locale, values)
    income = read_table(src).column("income")
    assert str(income.type) == "double"
    expected = [None if i % 5 == 0 else v for i, v in enumerate(values)]
    assert income.to_pylist() == pytest.approx(expected)
    streamed = [x for b in iter_record_batches(src, batch_size=7) for x in b.column(0).to_pylist()]
    assert streamed == income.to_pylist()
    assert str(read_table(src).column("size").type) == "double"


def test_grouped_integers_stay_integers_and_a_zero_led_group_is_no_group() -> None:
    header = ["n", "ratio"]
    rows = [["1,250", "0.250"], ["980", "0.5"], ["12,000", "0.125"]]
    assert decimal_mark(header, rows) == "."
    assert grouped_columns(header, rows, ".") == {"n": (",", "int64")}


def test_a_column_with_both_marks_shows_its_decimal_mark() -> None:
    assert decimal_mark(["kg"], [["1.234,5"], ["12"]]) == ","
    assert decimal_mark(["kg"], [["1,234.5"], ["12"]]) == "."


def test_a_grouped_column_with_a_stray_word_is_one_line_error(tmp_path: Path) -> None:
    src = write_locale(tmp_path / "t.csv", "us", amounts())
    text = src.read_text().splitlines()
    text[3] = text[3].replace(text[3].split('",')[0] + '"', "unknown", 1)
    src.write_text("\n".join(text) + "\n")
    out = tmp_path / "o.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, "t.csv", "'income'", "written like", "'unknown'", "--na-values")
    assert not out.exists()
    result = seqdiff("impute", str(src), "-o", str(out), "--na-values", *NA_VALUES, "unknown", *TINY)
    assert result.returncode == 0, result.stderr
    assert str(pq.read_table(out).column("income").type) == "double"


def test_grouped_numbers_are_imputed_as_numbers(tmp_path: Path) -> None:
    values = amounts()
    src = write_locale(tmp_path / "t.csv", "de", values)
    out = tmp_path / "o.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "imputed 16 cells" in result.stderr
    income = pq.read_table(out).column("income")
    assert income.null_count == 0
    observed = np.arange(len(values)) % 5 != 0
    np.testing.assert_allclose(income.to_numpy()[observed], values[observed])


def test_a_fraction_after_whole_numbers_in_a_stream_is_one_line(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    whole = "".join(f'"{1000 + i:,}",x\n' for i in range(20_000))  # past the 64 KiB sampled
    src.write_text('n,c\n"1,000",y\n' + whole + '"1,234.5",x\n')
    assert str(read_table(src).column("n").type) == "double"
    with pytest.raises(SeqdiffError, match=r"t.csv: column 'n': 1,234.5 has a fraction"):
        list(iter_record_batches(src))
