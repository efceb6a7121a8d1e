"""Property tests over files and frames as users have them: a CSV file of real-world fields, a Parquet
file of the types databases write, a DataFrame of pandas' dtypes. Each is read (whole and streamed
alike) and imputed, or refused with a one-line SeqdiffError; nothing else escapes. (The cases these
found are pinned by named tests in the other modules.)"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.files import iter_record_batches, read_table
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.tabular.task import impute_table

TINY = {"max_steps": 2, "dim": 16, "n_heads": 2, "early_stopping": False}
# Fields of real exports: placeholders, digit groups and unit signs, codes, dates and times, line breaks.
FIELDS = [
    "",
    " ",
    "NA",
    "?",
    "-",
    "#N/A",
    "1,5",
    "1.5",
    "$3",
    "(4)",
    "12%",
    "1 000",
    "1,234.5",
    "01",
    "007",
    "12345678901234567890",
    "-999",
    "1e400",
    "inf",
    "nan",
    "TRUE",
    "2024-01-01",
    "01/02/2024",
    "13/02/2024",
    "3:15 PM",
    "3/15/24",
    "a\nb",
    'q"uote',
    "é",
    "#x",
    "<0.5",
    "１２",
    "٣",
    "0x1F",
    "−5",
    "+5",
    ".5",
    "5.",
]
FORMATS = ["csv", "parquet", "xlsx"]


@pytest.fixture(autouse=True)
def _quiet() -> None:
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def one_line(err: SeqdiffError) -> None:
    assert "\n" not in str(err).replace("\\n", ""), str(err)


@st.composite
def csv_files(draw: st.DrawFn) -> str:
    """A CSV file's text: up to 4 columns of numbers mixed with a few kinds of real-world fields."""
    n_cols, n_rows = draw(st.integers(1, 4)), draw(st.integers(1, 30))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    kinds = [draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4)) for _ in range(n_cols)]
    number = st.integers(0, 5000).map(lambda n: str(n / 10))
    rows = [[draw(st.one_of(number, st.sampled_from(k))) for k in kinds] for _ in range(n_rows)]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerows([[f"c{j}" for j in range(n_cols)], *rows])
    return out.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(csv_files())
def test_a_csv_file_is_read_whole_as_streamed_or_refused_in_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    try:
        whole = read_table(path)
        streamed = pa.Table.from_batches(list(iter_record_batches(path, 7)), schema=whole.schema)
    except SeqdiffError as err:
        one_line(err)
        return
    assert streamed.equals(whole)


def parquet_columns(rows: int, rng: np.random.Generator) -> dict[str, pa.Array]:
    """One column of each type a database or a pipeline writes, a third of each missing."""
    hidden = rng.random(rows) < 0.3
    values = {
        "f32": pa.array(rng.normal(size=rows).astype(np.float32)),
        "i8": pa.array(rng.integers(-100, 100, rows).astype(np.int8)),
        "u64": pa.array(rng.integers(2**63, 2**64 - 1, rows, dtype=np.uint64)),
        "dict": pa.array(rng.choice([1.5, 2.5], rows)).dictionary_encode(),
        "tz": pa.array(rng.integers(0, 10**15, rows), pa.timestamp("us", tz="Europe/Paris")),
        "date": pa.array(rng.integers(0, 20_000, rows).astype(np.int32), pa.date32()),
        "time": pa.array(rng.integers(0, 86_400, rows).astype(np.int32), pa.time32("s")),
        "duration": pa.array(rng.integers(0, 10**9, rows), pa.duration("ms")),
        "decimal": pa.array([decimal.Decimal(int(v)) / 100 for v in rng.integers(-(10**6), 10**6, rows)]),
        "bool": pa.array(rng.random(rows) < 0.5),
        "list": pa.array([[1, 2]] * rows),
        "binary": pa.array([b"x"] * rows),
        "null": pa.nulls(rows),
        "nan": pa.array([float("nan")] * rows),
    }
    return {
        name: column if name in ("dict", "list", "binary", "null") else pc_mask(column, hidden)
        for name, column in values.items()
    }


def pc_mask(column: pa.Array, hidden: np.ndarray) -> pa.Array:
    return pa.array(column.to_pylist(), column.type, mask=hidden)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.sampled_from(sorted(parquet_columns(1, np.random.default_rng(0)))), min_size=1, max_size=4),
    st.sampled_from(FORMATS),
    st.sampled_from([None, 2]),
)
def test_a_parquet_file_of_any_type_is_imputed_or_refused_in_one_line(
    tmp_path: Path, seed: int, names: list[str], out_format: str, samples: int | None
) -> None:
    rng = np.random.default_rng(seed)
    columns = parquet_columns(int(rng.integers(3, 40)), rng)
    table = pa.table({f"{name}{j}": columns[name] for j, name in enumerate(names)})
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one per example: Hypothesis shares `tmp_path`
    src, out = folder / "t.parquet", folder / f"o.{out_format}"
    pq.write_table(table, src)
    try:
        report, _ = impute_table(src, out, fit=TINY, device="cpu", samples=samples, progress=False)
    except SeqdiffError as err:
        one_line(err)
        assert not out.exists()
        return
    assert report.rows == table.num_rows and out.exists()


def frame_columns(rows: int, rng: np.random.Generator) -> dict[str, pd.Series]:
    """One column of each pandas dtype users hand to the scikit-learn API, a third of each missing."""
    hidden = pd.Series(rng.random(rows) < 0.3)
    values = {
        "Int64": pd.Series(rng.integers(0, 50, rows)).astype("Int64"),
        "Float64": pd.Series(rng.normal(size=rows)).astype("Float64"),
        "boolean": pd.Series(rng.random(rows) < 0.5).astype("boolean"),
        "category": pd.Series(rng.choice(["a", "b"], rows)).astype("category"),
        "numbers_category": pd.Series(rng.choice([1.5, 2.5], rows)).astype("category"),
        "string": pd.Series(rng.choice(["x", "y"], rows)).astype("string"),
        "mixed": pd.Series([[1, "a", 2.5][i % 3] for i in range(rows)], dtype=object),
        "utc": pd.Series(pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC")),
        "timedelta": pd.Series(pd.to_timedelta(rng.integers(0, 1000, rows), unit="s")),
        "period": pd.Series(pd.period_range("2024-01", periods=rows, freq="M")),
        "complex": pd.Series(rng.normal(size=rows) + 1j),
        "uint8": pd.Series(rng.integers(0, 200, rows).astype(np.uint8)),
        "dates": pd.Series([dt.date(2024, 1, 1 + i % 28) for i in range(rows)], dtype=object),
    }
    return {name: column.mask(hidden) for name, column in values.items()}


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.sampled_from(sorted(frame_columns(1, np.random.default_rng(0)))), min_size=1, max_size=4),
)
def test_a_dataframe_of_any_dtype_is_imputed_in_its_dtypes_or_refused_in_one_line(
    seed: int, names: list[str]
) -> None:
    rng = np.random.default_rng(seed)
    columns = frame_columns(int(rng.integers(3, 40)), rng)
    frame = pd.DataFrame({f"{name}{j}": columns[name] for j, name in enumerate(names)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            imputer = MaskedDiffusionImputer(**TINY, device="cpu", progress=False).fit(frame)
            outs = [imputer.transform(frame), *imputer.transform_samples(frame, 2)]
        except SeqdiffError as err:
            one_line(err)
            return
    for out in outs:
        assert list(out.columns) == list(frame.columns) and out.index.equals(frame.index)
        assert [str(t) for t in out.dtypes] == [str(t) for t in frame.dtypes]
