"""Blank rows (no cell filled, as a spreadsheet exports its empty rows: ``,,``) are left blank and
reported, not imputed into invented records; every other row is imputed as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from seqdiff.tabular.files import read_table
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.tabular.stream import blank_rows, impute_file
from tests.test_bad_input import seqdiff

TINY = ["--max-steps", "5", "--no-early-stopping"]


def measurements(rows: int = 60) -> pd.DataFrame:
    """A weight (every fifth missing) and a site."""
    rng = np.random.default_rng(0)
    weight = rng.normal(70, 8, rows).round(1)
    weight[::5] = np.nan
    return pd.DataFrame({"weight": weight, "site": np.where(np.arange(rows) % 2, "a", "b")})


def test_blank_rows_are_the_rows_without_a_filled_cell() -> None:
    table = pa.table({"x": [1.0, None, float("nan"), None], "c": ["a", None, None, "b"]})
    assert blank_rows(table).tolist() == [False, True, True, False]


def test_a_spreadsheet_exports_blank_rows_are_left_blank_and_reported(tmp_path: Path) -> None:
    """Three empty rows at the end of a CSV export and one in its middle: the CLI says so, they come
    back empty, and the cell count is the other rows' missing cells."""
    src, out = tmp_path / "export.csv", tmp_path / "out.csv"
    lines = measurements().to_csv(index=False).splitlines()
    lines.insert(31, ",")
    src.write_text("\n".join(lines + [",", ",", ","]) + "\n")
    before = src.read_bytes()
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "seqdiff: 4 blank row(s), no cell filled: left blank (nothing to impute them from)" in (
        result.stderr.splitlines()
    )
    assert "imputed 12 cells in 64 rows" in result.stderr
    written = out.read_text().splitlines()
    assert [written[31], *written[-3:]] == [","] * 4
    got = read_table(out)
    assert int(pc.sum(pc.is_null(got.column("weight"))).as_py()) == 4 == got.column("site").null_count
    assert src.read_bytes() == before


def test_blank_rows_stay_blank_in_every_draw_and_in_a_batch_of_their_own(tmp_path: Path) -> None:
    """A Parquet file whose blank rows hold NaN: they come back as they were (NaN) in the output and in
    each draw, also when a batch holds nothing else; the other rows equal a file without them."""
    df = measurements()
    blank = pd.DataFrame({"weight": [np.nan] * 4, "site": [None] * 4})
    with_blank = tmp_path / "with_blank.parquet"
    pd.concat([df, blank], ignore_index=True).to_parquet(with_blank, index=False)
    imputer = MaskedDiffusionImputer(dim=16, n_layers=1, n_heads=2, max_steps=5, device="cpu", point="draws")
    imputer.fit(df)
    out = tmp_path / "out.parquet"
    report = impute_file(with_blank, out, imputer, batch_rows=30, n_samples=2, keep_draws=True)
    assert (report.rows, report.imputed_cells, report.blank_rows) == (64, 12, 4)
    for path in [out, *map(Path, report.draws)]:
        weight = pq.read_table(path).column("weight").to_numpy(zero_copy_only=False)
        assert np.isnan(weight[60:]).all() and not np.isnan(weight[:60]).any()
        assert pq.read_table(path).column("site").null_count == 4
    alone = tmp_path / "alone.parquet"
    df.to_parquet(alone, index=False)
    impute_file(alone, tmp_path / "alone_out.parquet", imputer, batch_rows=30, n_samples=2)
    got, expected = pq.read_table(out).slice(0, 60), pq.read_table(tmp_path / "alone_out.parquet")
    assert got.to_pydict() == expected.to_pydict()


def test_empty_columns_and_unseen_values_are_one_line_each(tmp_path: Path) -> None:
    """Columns with no value (float and integer in Parquet, an empty one in CSV), then a value a saved
    model never saw: each said in one ``seqdiff:`` line, not as a warning's file, line and source."""
    src, model = tmp_path / "t.parquet", tmp_path / "model"
    df = measurements().assign(empty=np.nan, count=pd.array([None] * 60, dtype="Int64"))
    df.to_parquet(src, index=False)
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "o.parquet"), "--save-model", str(model), *TINY)
    assert result.returncode == 0, result.stderr
    said = f"seqdiff: {src}: column(s) 'empty', 'count' have no observed value: not modelled, left empty"
    assert said in result.stderr.splitlines() and "Warning" not in result.stderr
    csv = tmp_path / "t.csv"
    measurements().assign(notes=None).to_csv(csv, index=False)
    result = seqdiff("impute", str(csv), "-o", str(tmp_path / "o.csv"), *TINY)
    assert f"seqdiff: {csv}: column(s) 'notes' have no observed value" in result.stderr
    new = tmp_path / "new.parquet"
    df.assign(site=["c"] * 3 + ["a"] * 57).to_parquet(new, index=False)
    result = seqdiff("impute", str(new), "-o", str(tmp_path / "n.parquet"), "--checkpoint", str(model))
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr
    assert (
        f"seqdiff: {new}: column 'site': 3 value(s) not seen in training (e.g. 'c'); encoded as missing"
        in result.stderr.splitlines()
    )
