"""A saved table model applied to the next file of the same kind (``seqdiff impute --checkpoint``, the
scikit-learn API's `transform`): types a new file may read in differently are imputed or refused in one
line before any work, never a failure after it."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from tests.test_bad_input import assert_one_line_error, seqdiff

TINY = {"dim": 16, "n_layers": 1, "n_heads": 2, "max_steps": 5, "device": "cpu"}


def readings(n: int, seed: int) -> pd.DataFrame:
    """A sensor's readings (fractions) and a text category, a fifth of each missing, never both (a blank
    row is left blank)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {"level": rng.normal(5, 2, n).round(2), "site": rng.choice(["north", "south", "west"], n)}
    )
    df.loc[rng.random(n) < 0.2, "level"] = np.nan
    df.loc[(rng.random(n) < 0.2) & df["level"].notna(), "site"] = None
    return df


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "readings"
    MaskedDiffusionImputer(**TINY).fit(readings(300, 0)).save(folder)
    return folder


def whole_numbered(n: int, seed: int) -> pd.DataFrame:
    """The next file: this month's levels happen to be whole numbers (a CSV reads them as integers)."""
    df = readings(n, seed)
    df["level"] = df["level"].round().astype("Int64")
    return df


def test_whole_numbers_in_a_column_of_fractions_take_the_models_type(model_dir: Path, tmp_path: Path):
    """They were a failure after the imputation (`Float value -0.13 was truncated converting to int64`);
    now the column is written in the model's type, with one line saying so."""
    new = whole_numbered(60, 1)
    src, out = tmp_path / "march.csv", tmp_path / "filled.csv"
    new.to_csv(src, index=False)
    result = seqdiff("impute", str(src), "--checkpoint", str(model_dir), "-o", str(out))
    assert result.returncode == 0, result.stderr
    notice = [line for line in result.stderr.splitlines() if "whole numbers" in line]
    assert notice == [
        "seqdiff: column 'level' holds whole numbers here but fractions in the model (double): written as double"
    ]
    filled = pd.read_csv(out)
    observed = new["level"].notna().to_numpy()
    assert filled["level"].notna().all() and filled["level"].dtype == np.float64
    assert (filled["level"][observed] == new["level"][observed].astype(float)).all()
    assert (filled["level"][~observed] % 1 != 0).any()  # imputed as the model's fractions


def test_whole_numbers_streamed_in_batches_get_one_output_type(model_dir: Path, tmp_path: Path):
    """Batches with and without a missing level are written in one type, or the Parquet writer would
    refuse the second batch's schema."""
    new = whole_numbered(400, 2)
    new.loc[:199, "level"] = new.loc[:199, "level"].fillna(3)  # the first two batches have no gap
    src, out = tmp_path / "april.parquet", tmp_path / "filled.parquet"
    new.to_parquet(src)
    result = seqdiff(
        "impute", str(src), "--checkpoint", str(model_dir), "-o", str(out), "--batch-rows", "100"
    )
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.schema.field("level").type == pa.float64()
    assert table.column("level").null_count == 0


def test_a_nullable_integer_frame_is_returned_as_float(model_dir: Path):
    """`transform` on a pandas ``Int64`` column raised pandas' `TypeError: cannot safely cast
    non-equivalent object to int64`."""
    imputer = MaskedDiffusionImputer.load(model_dir)
    new = whole_numbered(40, 3)
    with pytest.warns(UserWarning, match="'level' holds whole numbers here .* returned as float64"):
        out = imputer.transform(new)
    assert out["level"].dtype == np.float64 and out["level"].notna().all()
    observed = new["level"].notna().to_numpy()
    assert (out["level"][observed] == new["level"][observed].astype(float)).all()
    assert out["site"].dtype == new["site"].dtype  # the other columns keep their dtypes


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (pd.array([1.0, 2.0, None] * 20), "double"),
        (pd.array([1, 2, None] * 20, dtype="Int64"), "int64"),
        (pd.array([True, False, None] * 20, dtype="boolean"), "bool"),
    ],
)
def test_categories_the_column_cannot_hold_are_refused_before_any_work(
    model_dir: Path, tmp_path: Path, values: list, kind: str
):
    """Text categories for a column of numbers here: a failure after the imputation ('y' as a double)."""
    new = readings(60, 4).assign(site=values)
    src, out = tmp_path / "other.parquet", tmp_path / "out.parquet"
    new.to_parquet(src)
    result = seqdiff("impute", str(src), "--checkpoint", str(model_dir), "-o", str(out))
    assert_one_line_error(
        result, "other.parquet: column 'site'", f"holds {kind} values here", "('north', 'south', 'west')"
    )
    assert not out.exists()
    imputer = MaskedDiffusionImputer.load(model_dir)
    with pytest.raises(SeqdiffError, match=f"column 'site' holds {kind} values here"):
        imputer.transform(new)


def test_text_codes_read_as_numbers_still_match(tmp_path: Path):
    """A model of codes kept as text ('1', '2', '3' in Parquet) imputes a CSV that reads them as integers:
    every category can be written as one, so nothing is refused or unseen."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"grade": rng.choice(["1", "2", "3"], 200), "x": rng.normal(size=200)})
    df.loc[rng.random(200) < 0.2, "grade"] = None
    folder = tmp_path / "codes"
    MaskedDiffusionImputer(**TINY).fit(df).save(folder)
    src, out = tmp_path / "codes.csv", tmp_path / "out.csv"
    df.to_csv(src, index=False)
    result = seqdiff("impute", str(src), "--checkpoint", str(folder), "-o", str(out))
    assert result.returncode == 0 and "not seen" not in result.stderr, result.stderr
    assert set(pd.read_csv(out)["grade"]) == {1, 2, 3}


def test_words_among_a_numeric_columns_numbers_are_named(model_dir: Path, tmp_path: Path):
    """The error said only `has type string here`; it names the words and the flag that reads them."""
    new = readings(60, 6).astype({"level": object})
    new.loc[[3, 7], "level"], new.loc[9, "level"] = "n.d.", "broken"
    src, out = tmp_path / "may.csv", tmp_path / "out.csv"
    new.to_csv(src, index=False)
    result = seqdiff("impute", str(src), "--checkpoint", str(model_dir), "-o", str(out))
    assert_one_line_error(
        result, "column 'level' is numeric in the model's schema", "'n.d.', 'broken' among its numbers"
    )
    assert not out.exists()
    flag = result.stderr.split("CSV or Excel: --na-values ")[1].rstrip(")\n").split()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = seqdiff(
            "impute", str(src), "--checkpoint", str(model_dir), "-o", str(out), "--na-values", *flag
        )
    assert fixed.returncode == 0, fixed.stderr
    assert pd.read_csv(out)["level"].notna().all()


def test_whole_numbers_beyond_the_models_decimal_type_are_one_line(tmp_path: Path):
    rng = np.random.default_rng(7)
    prices = pa.array([round(x, 2) for x in rng.uniform(0, 100, 100)]).cast(pa.decimal128(6, 2))
    folder = tmp_path / "prices"
    table = pa.table({"price": prices, "shop": rng.choice(["a", "b"], 100)})
    MaskedDiffusionImputer(**TINY).fit(table).save(folder)
    src, out = tmp_path / "big.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"price": pa.array([10**9, None] * 10), "shop": ["a", "b"] * 10}), src)
    result = seqdiff("impute", str(src), "--checkpoint", str(folder), "-o", str(out))
    assert_one_line_error(result, "column 'price': its numbers do not fit the model's type decimal128(6, 2)")
    assert not out.exists()


@pytest.fixture(scope="module")
def hourly() -> tuple[pd.DataFrame, MaskedDiffusionImputer]:
    """A meter read every hour: the reading grows with the time, and the model learns that."""
    rng = np.random.default_rng(8)
    when = pd.Series(pd.date_range("2024-01-01", periods=400, freq="h"), dtype="datetime64[us]")
    df = pd.DataFrame({"when": when, "reading": np.arange(400.0) + rng.normal(0, 2, 400)})
    holed = df.assign(reading=df["reading"].mask(rng.random(400) < 0.2))
    return df, MaskedDiffusionImputer(**{**TINY, "max_steps": 300}).fit(holed)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_times_in_another_unit_are_read_on_the_models_scale(hourly, unit: str):
    """A model of microseconds given seconds (a CSV) or nanoseconds (pandas' Parquet) read their storage
    integers as microseconds: early readings got the last hours' values, or the reverse. Every unit now
    gets the same values, and the early hours get early readings."""
    df, imputer = hourly
    late = pa.table(
        {"when": pa.array(df["when"]).cast(pa.timestamp(unit)), "reading": pa.nulls(400, pa.float64())}
    )
    filled = imputer.transform(late.slice(0, 40)).column("reading").to_numpy()
    same_in_us = imputer.transform(
        late.slice(0, 40).cast(pa.schema([("when", pa.timestamp("us")), ("reading", pa.float64())]))
    )
    assert np.array_equal(filled, same_in_us.column("reading").to_numpy())
    assert filled.mean() < 100  # the first 40 hours' readings run from 0 to 40, the table's up to 400


@pytest.mark.parametrize("unit", ["s", "ms", "ns"])
def test_imputed_times_are_written_in_the_files_unit(hourly, unit: str):
    """An imputed time in microseconds did not fit a column of seconds (`would lose data`): one-line
    error. Now it is written in the file's unit, truncated."""
    df, imputer = hourly
    holed = pa.table({"when": pa.nulls(5, pa.timestamp(unit)), "reading": pa.array(df["reading"][:5])})
    out = imputer.transform(holed)
    assert out.column("when").type == pa.timestamp(unit) and out.column("when").null_count == 0


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        (
            pa.array(np.arange(10.0)),
            "holds double values here, but the model's are timestamp[us] (numbers, not",
        ),
        (pa.array(np.arange(10)), "holds int64 values here, but the model's are timestamp[us] (numbers, not"),
        (pa.array([pd.Timedelta(1, "h")] * 10), "holds duration[us] values here"),
    ],
)
def test_numbers_for_times_are_one_line(hourly, values: pa.Array, needle: str):
    """Their storage integers were read as times: `transform` went on with meaningless positions, and a
    DataFrame's float column failed on writing dates back (`TypeError: float() argument`)."""
    _, imputer = hourly
    with pytest.raises(SeqdiffError, match=re.escape(f"column 'when' {needle}")):
        imputer.transform(pa.table({"when": values, "reading": pa.nulls(10, pa.float64())}))
    with pytest.raises(SeqdiffError, match="column 'when' holds double values here"):
        imputer.transform(pd.DataFrame({"when": [1.0, None], "reading": [2.0, 3.0]}))


def test_a_frame_of_zoned_times_keeps_its_dtype(hourly):
    """pandas refused to write the model's naive times into a column in UTC (`Cannot use .astype to
    convert from timezone-naive dtype to timezone-aware dtype`)."""
    df, imputer = hourly
    zoned = df.head(6).assign(when=df["when"].head(6).dt.tz_localize("UTC").astype("datetime64[ns, UTC]"))
    zoned.loc[[1, 4], "when"] = pd.NaT
    out = imputer.transform(zoned)
    assert out["when"].dtype == zoned["when"].dtype and out["when"].notna().all()
    assert out["when"][[0, 2]].equals(zoned["when"][[0, 2]])


def test_a_column_renamed_by_case_or_spaces_is_named(model_dir: Path, tmp_path: Path):
    src, out = tmp_path / "june.csv", tmp_path / "out.csv"
    readings(30, 9).rename(columns={"level": "Level ", "site": "sight"}).to_csv(src, index=False)
    result = seqdiff("impute", str(src), "--checkpoint", str(model_dir), "-o", str(out))
    assert_one_line_error(result, "column 'level' is missing", "; this file has 'Level '")
    imputer = MaskedDiffusionImputer.load(model_dir)
    with pytest.raises(SeqdiffError, match="column 'site' is missing .*; this file has 'sight'$"):
        imputer.transform(readings(30, 9).rename(columns={"site": "sight"}))
