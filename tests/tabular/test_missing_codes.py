"""Numbers that stand for missing (-999, 9999): named with the ``--na-values`` that reads them as
missing, in CSV, Excel and Parquet inputs; a plausible 99 is left alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from seqdiff.tabular.excel import SheetWriter, read_sheet
from seqdiff.tabular.files import read_table
from seqdiff.tabular.missing_codes import missing_codes
from tests.test_bad_input import seqdiff

TINY = ["--max-steps", "5", "--no-early-stopping"]


def readings(rows: int = 120) -> pd.DataFrame:
    """Temperatures with -999 for a missing reading in every sixth row, and a site."""
    rng = np.random.default_rng(0)
    temp = rng.normal(15, 4, rows).round(1)
    temp[::6] = -999
    return pd.DataFrame({"temp": temp, "site": np.where(np.arange(rows) % 2, "a", "b")})


def test_codes_far_outside_a_columns_values_are_named() -> None:
    table = pa.table(
        {
            "temp": [12.5, 14.0, -999.0, 13.2, -999.0, -999.0, 11.0],
            "count": [9999, 3, 9999, 1, 9999, 2, 4],
            "age": [99, 45, 99, 80, 99, 62, 97],  # 99 next to the other ages: plausible
            "rare": [-99.0, 1.0, 2.0, -99.0, 1.5, 2.5, 1.0],  # in 2 rows only
            "only": [-999.0] * 7,  # nothing else to compare with
            "word": ["-999"] * 7,  # text is not numbers
        }
    )
    codes = missing_codes(table)
    assert [(c.column, c.token, c.rows) for c in codes] == [("temp", "-999", 3), ("count", "9999", 3)]
    assert codes[0].describe() == "column 'temp': -999 in 3 rows, far outside its other values (11 to 14)"


def test_the_cli_names_a_code_and_its_na_values_read_it_as_missing(tmp_path: Path) -> None:
    src, out, model = tmp_path / "t.csv", tmp_path / "o.csv", tmp_path / "model"
    df = readings()
    df.to_csv(src, index=False)
    result = seqdiff("impute", str(src), "-o", str(out), "--save-model", str(model), *TINY)
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "code for missing" in line]
    others = df["temp"][df["temp"] > -999]
    assert said == [
        f"seqdiff: column 'temp': -999 in 20 rows, far outside its other values ({others.min():g} to "
        f"{others.max():g}): a code for missing? To read it as missing: --na-values '?' - NA N/A n/a null "
        "NULL NaN nan -999"
    ]
    assert "imputed 0 cells" in result.stderr
    # A saved model's run names the code too, from the file's first rows.
    reused = seqdiff("impute", str(src), "-o", str(out), "--checkpoint", str(model))
    assert reused.returncode == 0, reused.stderr
    assert [line for line in reused.stderr.splitlines() if "code for missing" in line] == said
    flags = ["--na-values", "?", "-", "NA", "N/A", "n/a", "null", "NULL", "NaN", "nan", "-999"]
    result = seqdiff("impute", str(src), "-o", str(out), *flags, *TINY)
    assert result.returncode == 0 and "code for missing" not in result.stderr
    assert "imputed 20 cells" in result.stderr
    temp = read_table(out).column("temp").to_numpy()
    assert (temp > -999).all() and np.isfinite(temp).all()


def test_a_parquet_input_is_told_to_store_nulls(tmp_path: Path) -> None:
    src = tmp_path / "t.parquet"
    readings().to_parquet(src)
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "o.parquet"), *TINY)
    assert result.returncode == 0, result.stderr
    assert "-999 in 20 rows" in result.stderr and "If so, store those cells as nulls." in result.stderr
    assert pq.read_table(src).column("temp").null_count == 0  # the input is not touched


def test_na_values_read_an_excel_cells_number_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    with SheetWriter(path) as writer:
        writer.write_table(pa.table({"temp": [12.5, -999.0, 13.0], "n": [-999, 4, 5]}))
    assert read_sheet(path, na_values=("-999",)).to_pydict() == {
        "temp": [12.5, None, 13.0],
        "n": [None, 4, 5],
    }
    assert read_sheet(path, na_values=()).column("temp").null_count == 0
