"""Numbers written with digit groups (``1,234.5``, ``1.234,5``, ``1 234,5``) and unit signs (``$1,250``,
``1.234,50 €``, ``12%``) in CSV files: read as numbers, whole and streamed, and imputed; such a column
with a stray word is one line naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.csv_numbers import NumberStyle, decimal_mark, number_styles
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
    assert number_styles(header, rows, ".") == {"n": NumberStyle(",", "", "", "int64")}


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


# How spreadsheets write amounts and rates with their unit signs: (delimiter, decimal mark, group
# separator, how -1234567.5 and 12.5 are written), the sign before or after the currency.
UNITS = {
    "us": (",", ".", ",", '"-$1,234,567.50"', "12.5%"),
    "us-sign-after-unit": (",", ".", ",", '"$-1,234,567.50"', "12.5 %"),
    "de": (";", ",", ".", "-1.234.567,50 €", "12,5 %"),
    "fr": (";", ",", "\u202f", "-1\u202f234\u202f567,50\u00a0€", "12,5\u00a0%"),
    "uk": (",", ".", ",", '"-£1,234,567.50"', "12.5%"),
}


def write_units(path: Path, locale: str, amounts: np.ndarray, rates: np.ndarray) -> Path:
    sep, decimal, group, amount_example, rate_example = UNITS[locale]
    lines = [f"amount{sep}rate{sep}city"]
    for i, (a, r) in enumerate(zip(amounts, rates, strict=True)):
        number = grouped(abs(a), decimal, group).strip('"')
        amount = amount_example.replace(grouped(1234567.5, decimal, group).strip('"'), number)
        if a >= 0:
            amount = amount.replace("-", "", 1)
        rate = rate_example.replace("12" + decimal + "5", f"{r:.1f}".replace(".", decimal))
        lines.append(f"{'' if i % 5 == 0 else amount}{sep}{'' if i % 7 == 0 else rate}{sep}c{i % 2}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("locale", UNITS)
def test_amounts_and_rates_with_unit_signs_are_read_as_numbers(locale: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    amounts, rates = np.round(rng.uniform(-2e6, 2e6, 80), 2), np.round(rng.uniform(0, 100, 80), 1)
    src = write_units(tmp_path / "t.csv", locale, amounts, rates)
    table = read_table(src)
    assert str(table.column("amount").type) == str(table.column("rate").type) == "double"
    assert table.column("amount").to_pylist() == pytest.approx(
        [None if i % 5 == 0 else a for i, a in enumerate(amounts)]
    )
    assert table.column("rate").to_pylist() == pytest.approx(
        [None if i % 7 == 0 else r for i, r in enumerate(rates)]
    )
    streamed = [x for b in iter_record_batches(src, batch_size=9) for x in b.column("amount").to_pylist()]
    assert streamed == table.column("amount").to_pylist()


def test_unit_signs_without_groups_and_whole_numbers_stay_integers() -> None:
    header, rows = (
        ["usd", "pct", "mixed", "word"],
        [["$12", "5%", "$3", "5% off"], ["$980", "12%", "4 €", "10% off"]],
    )
    styles = number_styles(header, rows, ".")
    assert styles == {"usd": NumberStyle(None, "$", "", "int64"), "pct": NumberStyle(None, "", "%", "int64")}


def test_unit_signs_show_a_decimal_comma() -> None:
    assert decimal_mark(["price"], [["12,50 €"], ["3 €"]]) == ","


def test_an_amount_column_with_a_stray_word_is_one_line_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    src = write_units(tmp_path / "t.csv", "us", rng.uniform(0, 5000, 80), rng.uniform(0, 100, 80))
    text = src.read_text().splitlines()
    text[3] = "call us" + text[3][text[3].index('",') + 1 :]
    src.write_text("\n".join(text) + "\n")
    out = tmp_path / "o.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, "t.csv", "'amount'", "written like $", "'call us'", "--na-values")
    assert not out.exists()


def test_amounts_are_imputed_as_numbers_and_written_plain(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    amounts, rates = np.round(rng.uniform(0, 5000, 80), 2), np.round(rng.uniform(0, 100, 80), 1)
    src = write_units(tmp_path / "t.csv", "de", amounts, rates)
    out = tmp_path / "o.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "imputed 28 cells" in result.stderr  # 16 amounts and 12 rates
    table = read_table(out)
    assert table.column("amount").null_count == table.column("rate").null_count == 0
    observed = np.arange(80) % 5 != 0
    np.testing.assert_allclose(table.column("amount").to_numpy()[observed], amounts[observed])
    assert "€" not in out.read_text(encoding="utf-8")


def test_accounting_negatives_in_parentheses(tmp_path: Path) -> None:
    amounts = np.round(np.random.default_rng(4).uniform(-5000, 5000, 60), 2)
    text = [f'"(${-a:,.2f})"' if a < 0 else f'"${a:,.2f}"' for a in amounts]
    src = tmp_path / "t.csv"
    src.write_text("amount,k\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(text)))
    assert read_table(src).column("amount").to_pylist() == pytest.approx(amounts.tolist())


def test_whole_numbers_that_are_codes_are_kept_as_written(tmp_path: Path) -> None:
    """ZIP codes and zero-padded sample numbers (and a spaced file's), 20-digit barcodes: text, whole
    and streamed, so a CSV output writes ``01001`` as the input does (as numbers it came back as
    ``1001``, the barcodes as ``1.2345678901234567e+19``); reported; an imputed cell is one of the
    column's codes. Plain whole numbers and ``07.5`` stay numbers."""
    rng = np.random.default_rng(0)
    zips = rng.choice(["01001", "02139", "94105", "10001"], 80)
    lines = ["zip,sample,n,kg,barcode"] + [
        f"{'' if i % 9 == 4 else z},{i % 30:03d},{i},{'07.5' if i % 2 else '8.25'},{12345678901234567000 + i}"
        for i, z in enumerate(zips)
    ]
    src, out = tmp_path / "sites.csv", tmp_path / "o.csv"
    src.write_text("\n".join(lines) + "\n")
    whole = read_table(src)
    types = [whole.schema.field(n).type for n in ("zip", "sample", "n", "kg", "barcode")]
    assert types == ["string", "string", "int64", "double", "string"]
    streamed = [b for b in iter_record_batches(src, 16)]
    assert all(b.schema.equals(whole.schema) for b in streamed)
    assert sum((b.column(0).to_pylist() for b in streamed), []) == whole.column("zip").to_pylist()
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert (
        "seqdiff: column(s) 'zip', 'sample', 'barcode': whole numbers that are codes (leading zeros as in "
        "01001, or too many digits for a number): read as text, to keep them as written"
    ) in result.stderr.splitlines()
    back = [line.replace('"', "").split(",") for line in out.read_text().splitlines()[1:]]
    given = [line.split(",") for line in lines[1:]]
    assert [(b[1], b[4]) for b in back] == [(g[1], g[4]) for g in given]  # 000, 001, ... as written
    assert all(b[0] == g[0] if g[0] else b[0] in set(zips) for b, g in zip(back, given, strict=True))
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("\n".join(", ".join(line.split(",")) for line in lines) + "\n")
    assert read_table(spaced).column("zip").to_pylist() == whole.column("zip").to_pylist()
