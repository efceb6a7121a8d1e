"""A Parquet dataset's folder as the input: the parts Spark writes (``part-00000-....snappy.parquet`` and
a ``_SUCCESS`` marker) or `pyarrow.parquet.write_to_dataset`'s hive partitions (``site=north/``). It was
`not a file`; now read as one table, in the order Arrow reads the parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqdiff.tabular.files import iter_record_batches, read_table
from tests.test_bad_input import assert_one_line_error, seqdiff

TINY = ["--max-steps", "5", "--no-early-stopping"]


def readings(rows: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "level": rng.normal(5, 2, rows).round(2),
            "kind": rng.choice(["a", "b", "c"], rows),
            "site": np.repeat(["north", "south", "west"], rows // 3),
        }
    )
    df.loc[rng.random(rows) < 0.2, "level"] = np.nan
    return df


@pytest.fixture
def spark_folder(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """Three parts and Spark's `_SUCCESS` marker, with one row group of 100 rows per part."""
    df, folder = readings(), tmp_path / "readings.parquet"
    folder.mkdir()
    for i in range(3):
        part = pa.Table.from_pandas(df.iloc[200 * i : 200 * (i + 1)], preserve_index=False)
        pq.write_table(part, folder / f"part-{i:05d}-9f1c.snappy.parquet", row_group_size=100)
    (folder / "_SUCCESS").write_text("")
    return folder, df


def test_a_spark_folder_is_imputed_as_the_one_file_it_splits(spark_folder, tmp_path: Path):
    folder, df = spark_folder
    single = tmp_path / "single.parquet"
    df.to_parquet(single, index=False)
    assert pa.Table.from_batches(list(iter_record_batches(folder, 64))).equals(read_table(single))
    outs = []
    for src in (folder, single):
        out = tmp_path / f"from_{src.stem}.csv"
        result = seqdiff("impute", str(src), "-o", str(out), *TINY)
        assert result.returncode == 0, result.stderr
        assert f"in 600 rows -> {out}" in result.stderr
        outs.append(out.read_text())
    assert outs[0] == outs[1]  # same rows, same order, same fit and values


def test_hive_partitions_are_columns(tmp_path: Path):
    df, folder = readings(), tmp_path / "by_site"
    pq.write_to_dataset(pa.Table.from_pandas(df, preserve_index=False), folder, partition_cols=["site"])
    out = tmp_path / "out.parquet"
    result = seqdiff("impute", str(folder), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.num_rows == 600 and set(table.column_names) == {"level", "kind", "site"}
    assert table.column("level").null_count == 0
    assert sorted(set(table.column("site").to_pylist())) == ["north", "south", "west"]


def test_folders_that_cannot_be_read_or_written_into(spark_folder, tmp_path: Path):
    folder, _ = spark_folder
    inside = folder / "filled.parquet"
    result = seqdiff("impute", str(folder), "-o", str(inside), *TINY)
    assert_one_line_error(result, "the output would go into the input dataset's folder")
    assert not inside.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "_SUCCESS").write_text("")
    result = seqdiff("impute", str(empty), "-o", str(tmp_path / "o.csv"), *TINY)
    assert_one_line_error(result, "empty: a folder with no Parquet file in it")
    pytest.importorskip("ray")
    result = seqdiff("impute", str(folder), "-o", str(tmp_path / "o.parquet"), "--engine", "ray")
    assert_one_line_error(result, "--engine ray reads one Parquet file, not a dataset's folder")
