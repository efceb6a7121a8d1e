"""Schema inference, the table encoder and the file readers, on the shared tables and small synthetic ones."""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.codecs import MIN_SPLIT_ROWS
from seqdiff.tabular.encoding import TableEncoder
from seqdiff.tabular.files import iter_record_batches, read_table
from seqdiff.tabular.schema import ColumnSpec, Schema, infer_schema

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "tabular"
DATASETS = json.loads((DATA / "datasets.json").read_text())


def sample(name: str, n: int = 2000) -> pa.Table:
    table = pq.read_table(DATA / f"{name}.parquet")
    rows = np.random.default_rng(0).choice(table.num_rows, n, replace=False)
    return table.take(np.sort(rows))


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_inferred_schema_matches_datasets_json(name):
    schema = infer_schema(pq.read_table(DATA / f"{name}.parquet"))
    assert sorted(schema.numeric) == sorted(DATASETS[name]["numeric"])
    assert sorted(schema.categorical) == sorted(DATASETS[name]["categorical"])
    assert schema.passthrough == []


def test_integer_rule_and_overrides():
    df = pd.DataFrame(
        {"few": [1, 2, 3, 1] * 5, "many": range(20), "x": np.linspace(0, 1, 20), "s": ["a", "b"] * 10}
    )
    kinds = {c.name: c.kind for c in infer_schema(df, max_int_categories=3).columns}
    assert kinds == {"few": "categorical", "many": "numeric", "x": "numeric", "s": "categorical"}
    kinds = {c.name: c.kind for c in infer_schema(df, categorical=["many", "x"], numeric=["few"]).columns}
    assert kinds == {"few": "numeric", "many": "categorical", "x": "categorical", "s": "categorical"}
    with pytest.raises(SeqdiffError, match="unknown column.*'nope'"):
        infer_schema(df, categorical=["nope"])
    with pytest.raises(SeqdiffError, match="column 's' has type large_string and cannot be numeric"):
        infer_schema(df, numeric=["s"])
    with pytest.raises(SeqdiffError, match="both categorical and numeric"):
        infer_schema(df, categorical=["x"], numeric=["x"])


def mixed_table() -> pa.Table:
    n = 40
    return pa.table(
        {
            "x": pa.array(np.arange(n) / 4),
            "when": pa.array(np.arange(n) * 3_600_000_000_000 + 1_600_000_000_000_000_000).view(
                pa.timestamp("ns", tz="UTC")
            ),
            "day": pa.array([dt.date(2024, 1, 1 + i % 5) for i in range(n)], pa.date32()),
            "flag": pa.array([i % 3 == 0 for i in range(n)]),
            "dict": pa.array(["u", "v"] * (n // 2)).dictionary_encode(),
            "tags": pa.array([[i, i + 1] for i in range(n)]),
            "point": pa.array([{"a": i} for i in range(n)]),
            "blob": pa.array([bytes([i]) for i in range(n)], pa.binary()),
            "nothing": pa.nulls(n),
        }
    )


def test_passthrough_temporal_and_types():
    table = mixed_table()
    schema = infer_schema(table)
    assert schema.passthrough == ["tags", "point", "blob", "nothing"]
    assert schema.numeric == ["x", "when", "day"]
    assert schema.categorical == ["flag", "dict"]
    enc = TableEncoder.fit(table, n_bins=8)
    assert enc.columns == ["x", "when", "day", "flag", "dict"]
    decoded = enc.decode_sample(enc.encode(table), rng=0)
    assert decoded.schema == table.select(enc.columns).schema
    # date32 has 5 distinct days: one bin each, so it round-trips exactly; so do the categoricals.
    for name in ["day", "flag", "dict"]:
        assert decoded.column(name).equals(table.column(name))
    assert (enc.encode(decoded) == enc.encode(table)).all()


def test_schema_json_round_trip_and_check():
    schema = infer_schema(mixed_table())
    assert Schema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema
    with pytest.raises(SeqdiffError, match="new.parquet: column 'when' is missing"):
        schema.check(mixed_table().drop_columns(["when"]), source="new.parquet")
    changed = mixed_table().set_column(0, "x", pa.array(["a"] * 40))
    with pytest.raises(SeqdiffError, match="column 'x' is numeric in the model's schema but has type string"):
        schema.check(changed)
    schema.check(mixed_table().drop_columns(["blob"]).set_column(0, "x", pa.nulls(40)))
    with pytest.raises(SeqdiffError, match="unknown kind"):
        Schema.from_dict({"columns": [{"name": "a", "kind": "text", "arrow_type": "string"}]})
    assert Schema([ColumnSpec("a", "numeric", "double")]).kind_of("a") == "numeric"


def test_bad_tables_and_files(tmp_path):
    with pytest.raises(SeqdiffError, match="duplicate column name"):
        infer_schema(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(SeqdiffError, match="duplicate column name.*'a'"):
        infer_schema(pa.table([[1], [2]], names=["a", "a"]))
    with pytest.raises(SeqdiffError, match="no rows"):
        infer_schema(pd.DataFrame({"a": pd.Series([], dtype=float)}))
    fake = tmp_path / "fake.parquet"
    fake.write_text("a,b\n1,2\n")
    with pytest.raises(SeqdiffError, match="fake.parquet: not a readable Parquet file"):
        read_table(fake)
    with pytest.raises(SeqdiffError, match="fake.parquet: not a readable Parquet file"):
        iter_record_batches(fake)
    with pytest.raises(SeqdiffError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "t.ods").write_text("x")
    with pytest.raises(SeqdiffError, match="unsupported file type"):
        read_table(tmp_path / "t.ods")
    (tmp_path / "t.xls").write_text("x")
    with pytest.raises(SeqdiffError, match=r"a legacy Excel workbook \(.xls\); save it as .xlsx or CSV"):
        read_table(tmp_path / "t.xls")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    with pytest.raises(SeqdiffError, match="notes: a folder with no Parquet file in it"):
        read_table(tmp_path / "notes")
    with pytest.raises(SeqdiffError, match="not a readable Parquet file .*fake.parquet"):
        read_table(tmp_path)  # a dataset's folder, one of its parts broken
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SeqdiffError, match="empty.csv: cannot parse the file as CSV"):
        read_table(tmp_path / "empty.csv")


def test_streaming_parquet_and_csv(tmp_path):
    table = pq.read_table(DATA / "adult.parquet").slice(0, 1000)
    pacsv.write_csv(table, tmp_path / "adult.csv")
    enc = TableEncoder.fit(table)
    for path in [DATA / "adult.parquet", tmp_path / "adult.csv"]:
        batches = iter_record_batches(path, batch_size=300)
        first = next(batches)
        assert first.num_rows == 300
        assert enc.encode(first).shape == (300, 16)
        if path.suffix == ".csv":
            assert sum(b.num_rows for b in batches) + 300 == 1000
            # Empty CSV fields are missing cells, as in Parquet.
            assert (enc.encode(read_table(path)) == enc.encode(table)).all()


def test_encoder_round_trip_on_adult():
    table = sample("adult")
    enc = TableEncoder.fit(table)
    tokens = enc.encode(table)
    assert tokens.dtype == np.int64 and tokens.shape == (2000, 16)
    missing = np.stack(
        [table.column(c).is_null().to_numpy(zero_copy_only=False) for c in enc.columns], axis=1
    )
    assert ((tokens == enc.mask_id) == missing).all()
    complete = ~missing.any(axis=1)
    decoded = enc.decode_sample(tokens[complete], rng=1)
    assert (enc.encode(decoded) == tokens[complete]).all()  # every sampled value falls in its own bin
    for name in enc.schema.categorical:
        assert decoded.column(name).equals(table.filter(pa.array(complete)).column(name))
    sizes = np.array(enc.vocab_sizes)
    assert enc.offsets.tolist() == np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
    assert enc.vocab_size == sizes.sum() == len(enc.token_names) and enc.mask_id == enc.vocab_size
    assert (enc.allowed.sum(axis=1) == sizes).all()
    for j, (start, size) in enumerate(zip(enc.offsets, sizes, strict=True)):
        assert enc.allowed[j, start : start + size].all()
        assert all(name.startswith(enc.columns[j] + "=") for name in enc.token_names[start : start + size])
    assert "workclass=Private" in enc.token_names
    fnlwgt = enc.columns.index("fnlwgt")
    assert TableEncoder.fit(table, max_bin_width=0).vocab_sizes[fnlwgt] == 32
    assert 32 < enc.vocab_sizes[fnlwgt] <= 64  # its long right tail is split further


def test_numeric_bins():
    table = sample("adult", 5000)
    enc = TableEncoder.fit(table, max_bin_width=0)
    j = enc.columns.index("capital_gain")
    names = enc.token_names[enc.offsets[j] : enc.offsets[j] + enc.vocab_sizes[j]]
    # The spike at 0 (over 90% of rows) is its own bin; the other values still share the remaining bins.
    assert names[0] == "capital_gain=0" and names[1].startswith("capital_gain=[")
    assert enc.vocab_sizes[j] == 32
    magic = sample("magic")
    counts = np.bincount(TableEncoder.fit(magic, max_bin_width=0).encode(magic)[:, 0], minlength=32)
    assert counts.min() > 0.6 * counts.mean()  # quantile bins are balanced on a continuous column
    low_high = pd.DataFrame({"fnlwgt": [-1e12, 1e12]}).assign(
        **{c: table.column(c)[0].as_py() for c in enc.columns if c != "fnlwgt"}
    )
    j = enc.columns.index("fnlwgt")
    assert enc.encode(low_high)[:, j].tolist() == [enc.offsets[j], enc.offsets[j] + enc.vocab_sizes[j] - 1]


def bins_of(values: np.ndarray, **fit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left edges, training values per bin, value span per bin) of one numeric column."""
    edges = TableEncoder.fit(pd.DataFrame({"x": values}), **fit)._codecs[0].edges
    ordered = np.sort(values)
    starts = np.searchsorted(ordered, edges)
    ends = np.append(starts[1:], len(ordered))
    return edges, ends - starts, ordered[ends - 1] - ordered[starts]


@pytest.mark.parametrize("sigma", [0.7, 1.5])
def test_heavy_tails_get_finer_bins(sigma):
    values = np.random.default_rng(0).lognormal(sigma=sigma, size=5000)
    quantile, _, _ = bins_of(values, max_bin_width=0)
    edges, counts, spans = bins_of(values, max_bin_width=0.25)
    assert len(quantile) == 32 and 32 < len(edges) <= 64
    assert np.isin(quantile, edges).all()  # splits only add edges: every quantile bin is cut, none moved
    assert counts.min() >= MIN_SPLIT_ROWS
    splittable = counts >= 2 * MIN_SPLIT_ROWS
    if len(edges) < 64:  # below the cap, every bin that could still be split is narrow enough
        assert (spans[splittable] <= 0.25 * values.std()).all()
    else:  # at the cap, the widest bins were split first
        assert spans[splittable].max() < np.diff(np.sort(values)[[len(values) * 31 // 32, -1]])[0]
    # The split bins lie in the tail: the first 16 quantile bins (the body) are left whole.
    assert np.isin(edges[edges < np.median(values)], quantile).all()


def test_bins_of_evenly_spread_or_tied_values():
    rng = np.random.default_rng(1)
    edges, _, _ = bins_of(rng.random(5000))  # 32 bins of 0.11 standard deviations: nothing to split
    assert len(edges) == 32
    # A spike at the top holds 500 equal values: it cannot be split, the rest of the tail still is.
    tied = np.concatenate([rng.random(4000), rng.random(300) * 100, np.full(500, 100.0)])
    edges, counts, spans = bins_of(tied)
    assert 100.0 in edges and counts[-1] == 500 and spans[-1] == 0
    assert len(edges) > 32 and counts.min() >= MIN_SPLIT_ROWS


def test_low_cardinality_numeric_round_trips_exactly():
    table = sample("shoppers")
    enc = TableEncoder.fit(table)
    decoded = enc.decode_sample(enc.encode(table), rng=0)
    for name in ["Administrative", "Informational", "SpecialDay"]:
        assert decoded.column(name).equals(table.column(name))
    ints = pd.DataFrame({"n": np.arange(100) % 7 * 1000, "big": np.arange(100) ** 3})
    enc = TableEncoder.fit(ints, infer_schema(ints, numeric=["n", "big"]))  # "big" alone: an identifier
    decoded = enc.decode_sample(enc.encode(ints), rng=0).to_pandas()
    assert decoded["n"].equals(ints["n"]) and decoded["big"].dtype == np.int64


def test_decode_point():
    df = pd.DataFrame({"x": [0.25, 10.25, 10.25], "n": [1, 2, 2], "c": ["a", "b", "b"]})
    enc = TableEncoder.fit(df, infer_schema(df, numeric=["n"]))
    probs = [np.array([[0.25, 0.75]]), np.array([[3.0, 1.0]]), np.array([[0.4, 0.6]])]
    out = enc.decode_point(probs).to_pylist()
    assert out == [{"x": 7.75, "n": 1, "c": "b"}]  # n: 0.75 * 1 + 0.25 * 2 = 1.25 rounds to 1
    flat = np.zeros((1, 3, enc.vocab_size + 1))
    for j, p in enumerate(probs):
        flat[0, j, enc.offsets[j] : enc.offsets[j] + enc.vocab_sizes[j]] = p[0]
    assert enc.decode_point(flat).to_pylist() == out


def test_decode_point_median():
    # Two bins of 0..99 (50 values each, shifted by a third: no decimal rounding); the median follows
    # the cumulative mass inside a bin.
    df = pd.DataFrame({"x": np.arange(100.0) + 1 / 3})
    enc = TableEncoder.fit(df, n_bins=2, max_bin_width=0)
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.25, 0.75], [0.9, 0.1]])
    median = enc.decode_point([probs], numeric="median").column("x").to_numpy() - 1 / 3
    assert median.tolist() == pytest.approx([24.5, 74.5, 49.0, 50 + 49 / 3, 49 * 0.5 / 0.9])
    mean = enc.decode_point([probs]).column("x").to_numpy() - 1 / 3
    assert mean[2] == pytest.approx(49.5) and mean[3] == pytest.approx(0.25 * 24.5 + 0.75 * 74.5)
    with pytest.raises(ValueError, match="numeric must be one of"):
        enc.decode_point([probs], numeric="mode")


def test_decoded_numbers_keep_the_precision_they_were_recorded_with():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "kg": rng.normal(70, 8, 300).round(1),
            "price": rng.lognormal(3, 1, 300).round(2),
            "count": rng.integers(0, 50, 300).astype(float),  # whole numbers stored as floats
            "ratio": rng.random(300),  # computed, full precision
        }
    )
    enc = TableEncoder.fit(df)
    assert [c.decimals for c in enc._codecs] == [1, 2, 0, None]
    probs = [rng.dirichlet(np.ones(enc.vocab_sizes[j]), 50) for j in range(4)]
    for decoded in (enc.decode_point(probs, numeric="median"), enc.decode_sample(enc.encode(df), rng=1)):
        out = decoded.to_pandas()
        for name, places in [("kg", 1), ("price", 2), ("count", 0)]:
            assert np.array_equal(out[name], out[name].round(places)), name
        assert not np.array_equal(out["ratio"], out["ratio"].round(6))
    state = enc.to_dict()
    assert [c.decimals for c in TableEncoder.from_dict(state)._codecs] == [1, 2, 0, None]
    for column in state["columns"]:  # a model saved before decimals were kept: numbers not rounded
        column.pop("decimals")
    assert [c.decimals for c in TableEncoder.from_dict(state)._codecs] == [None] * 4


def test_state_json_round_trip():
    table = sample("default")
    enc = TableEncoder.fit(table)
    state = json.loads(json.dumps(enc.to_dict()))
    assert len(json.dumps(state)) < 2_000_000
    again = TableEncoder.from_dict(state)
    tokens = enc.encode(table)
    assert (again.encode(table) == tokens).all()
    assert again.token_names == enc.token_names and (again.allowed == enc.allowed).all()
    assert enc.decode_sample(tokens, rng=3).equals(again.decode_sample(tokens, rng=3))
    temporal = TableEncoder.fit(mixed_table())
    assert TableEncoder.from_dict(json.loads(json.dumps(temporal.to_dict())))._arrow_schema.equals(
        temporal._arrow_schema
    )
    with pytest.raises(SeqdiffError, match="unknown format"):
        TableEncoder.from_dict({"format": "other"})


def test_unseen_categories_all_missing_and_constant_columns():
    df = pd.DataFrame(
        {"c": ["a", "b", "a"], "k": [5.0, 5.0, 5.0], "empty": [None, None, None], "x": [1.0, 2.0, 3.0]}
    )
    assert infer_schema(df).passthrough == ["empty"]  # an object column of None is null-typed
    enc = TableEncoder.fit(df.astype({"empty": float}))
    assert enc.columns == ["c", "k", "x"] and enc.skipped == ["empty"]
    assert enc.vocab_sizes[:2] == [2, 1] and enc.token_names[2] == "k=5"
    new = pd.DataFrame({"c": ["z", "b", None], "k": [5.0, 7.0, None], "x": [1.0, 2.0, 3.0]})
    with pytest.warns(
        UserWarning, match="column 'c': 1 value.*not seen in training.*'z'.*encoded as missing"
    ):
        tokens = enc.encode(new)
    assert tokens[:, 0].tolist() == [enc.mask_id, 1, enc.mask_id]
    assert tokens[:, 1].tolist() == [2, 2, enc.mask_id]
    with pytest.raises(SeqdiffError, match="column 'c': 1 value"):
        enc.encode(new, on_unseen="error")
    with pytest.raises(SeqdiffError, match="column 'x' is missing"):
        enc.encode(new.drop(columns="x"))
    with pytest.raises(ValueError, match="column 'c': token 7 is not one of its tokens"):
        enc.decode_sample(np.array([[7, 2, 3]]))
