"""MaskedDiffusionImputer, streaming imputation, the table adapter and the table CLI, with tiny models."""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from seqdiff.cli.main import main
from seqdiff.cli.table import add_impute_parser, add_sample_table_parser
from seqdiff.errors import SeqdiffError
from seqdiff.tabular.encoding import TableEncoder
from seqdiff.tabular.fitting import MAX_VALIDATION_CELLS, VALIDATION_EVERY, HeldOutCells, hold_out_cells
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.tabular.model import table_spec
from seqdiff.tabular.stream import impute_file, read_sample
from seqdiff.training.config import ModelConfig

TINY = {"dim": 32, "n_layers": 1, "n_heads": 2, "batch_rows": 128, "lr": 5e-3, "n_bins": 16, "device": "cpu"}
LEVELS = np.array(["lo", "mid", "hi"])


def relation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """c = f(a, b): "hi" when a is "p", else "mid" when b is "u", else "lo" (as indices into LEVELS)."""
    return np.where(a == 0, 2, np.where(b == 0, 1, 0))


def complete_table(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """c = f(a, b) and y = x1 + x2; n is a nullable integer, when a timestamp, tags a passthrough column."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 3, n), rng.integers(0, 3, n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    df = pd.DataFrame(
        {
            "a": np.array(["p", "q", "r"])[a],
            "b": np.array(["u", "v", "w"])[b],
            "c": LEVELS[relation(a, b)],
            "x1": x1,
            "x2": x2,
            "y": x1 + x2,
            "n": pd.array(rng.integers(0, 1000, n), dtype="Int64"),
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
            "tags": [[int(i)] for i in range(n)],
        }
    )
    df.index = pd.RangeIndex(1000, 1000 + n)[rng.permutation(n)]
    return df


def holed_table(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """c and y missing in 30% of rows, the other modelled columns in 10%."""
    rng = np.random.default_rng(seed)
    rates = {"a": 0.1, "b": 0.1, "c": 0.3, "x1": 0.1, "x2": 0.1, "y": 0.3, "n": 0.1, "when": 0.1}
    out = df.copy()
    for name, rate in rates.items():
        out[name] = out[name].mask(rng.random(len(df)) < rate)
    return out


@pytest.fixture(scope="module")
def complete() -> pd.DataFrame:
    return complete_table()


@pytest.fixture(scope="module")
def holed(complete) -> pd.DataFrame:
    return holed_table(complete)


@pytest.fixture(scope="module")
def fitted(holed) -> MaskedDiffusionImputer:
    return MaskedDiffusionImputer(max_steps=400, **TINY).fit(holed)


def assert_observed_unchanged(out: pd.DataFrame, holed: pd.DataFrame) -> None:
    assert list(out.columns) == list(holed.columns) and out.index.equals(holed.index)
    assert out.dtypes.equals(holed.dtypes)
    for name in holed.columns:
        observed = holed[name].notna().to_numpy()
        pd.testing.assert_series_equal(out[name][observed], holed[name][observed])


def test_no_missing_cells_round_trip(fitted, complete):
    pd.testing.assert_frame_equal(fitted.transform(complete), complete)
    table = pa.Table.from_pandas(complete, preserve_index=False)
    assert fitted.transform(table).equals(table)


def test_observed_cells_kept_and_missing_filled(fitted, holed):
    out = fitted.transform(holed)
    assert_observed_unchanged(out, holed)
    assert not out.drop(columns="tags").isna().any().any()
    table = pa.Table.from_pandas(holed, preserve_index=False)
    filled = fitted.transform(table)
    assert filled.schema.equals(table.schema)
    for name in fitted.encoder_.columns:
        observed = pc.invert(pc.is_null(table.column(name), nan_is_null=True))
        assert filled.column(name).filter(observed).equals(table.column(name).filter(observed))
        assert filled.column(name).null_count == 0
    assert filled.column("tags").equals(table.column("tags"))


def test_learns_a_deterministic_column(fitted, complete, holed):
    out = transform_with(fitted, holed, n_samples=5)
    target = holed["c"].isna() & holed["a"].notna() & holed["b"].notna()
    accuracy = (out["c"][target] == complete["c"][target]).mean()
    mode = (complete["c"][target] == holed["c"].mode()[0]).mean()
    assert target.sum() > 100 and accuracy > 0.95 and mode < 0.5, (accuracy, mode)
    target = holed["y"].isna() & holed["x1"].notna() & holed["x2"].notna()
    error = (out["y"][target] - complete["y"][target]).abs().mean()
    mean_error = (holed["y"].mean() - complete["y"][target]).abs().mean()
    assert error < 0.5 * mean_error, (error, mean_error)


def test_finer_tail_bins_impute_a_heavy_tailed_column_better(y_imputation_error):
    """y = x / 5 with x log-normal (like California's rooms and bedrooms): with quantile bins alone, a
    value in the top bin is known only to within several standard deviations."""
    rng = np.random.default_rng(0)
    x = rng.lognormal(sigma=1.2, size=3000)
    complete = pd.DataFrame({"x": x, "y": x / 5})
    hidden = rng.random(len(complete)) < 0.3
    errors = {
        width: y_imputation_error(complete, hidden, max_bin_width=width) / complete["y"].std()
        for width in (0.0, MaskedDiffusionImputer().max_bin_width)
    }
    assert errors[0.25] < 0.6 * errors[0.0], errors


def transform_with(imputer: MaskedDiffusionImputer, X, **params) -> pd.DataFrame:
    """``imputer.transform(X)`` with ``params`` set for this call only."""
    defaults = imputer.get_params()
    try:
        return imputer.set_params(**params).transform(X)
    finally:
        imputer.set_params(**defaults)


def test_predictive_point_is_the_conditional_mean_and_mode(fitted, holed):
    """transform's value of a cell is the model's conditional mean (numeric, with numeric_point="mean")
    or most probable category given the row's observed cells, whatever the seed."""
    enc = fitted.encoder_
    rows = holed[holed["x1"].isna() & holed["c"].isna()].head(40)
    table = pa.Table.from_pandas(rows, preserve_index=False)
    tokens = enc.encode(table)
    within = torch.as_tensor(enc.within(table), dtype=torch.float32)  # the observed values' places
    with torch.no_grad():
        probs = fitted.model_.log_probs(torch.as_tensor(tokens), within=within).exp().double().numpy()
    x1, c = enc.columns.index("x1"), enc.columns.index("c")
    p_x1 = probs[:, x1, enc.offsets[x1] : enc.offsets[x1] + enc.vocab_sizes[x1]]
    bin_means = np.array(enc.to_dict()["columns"][x1]["means"])
    p_c = probs[:, c, enc.offsets[c] : enc.offsets[c] + enc.vocab_sizes[c]]
    out = transform_with(fitted, rows, numeric_point="mean")
    median = transform_with(fitted, rows, numeric_point="median")
    np.testing.assert_allclose(out["x1"], (p_x1 * bin_means).sum(1) / p_x1.sum(1), rtol=1e-5)
    # The median lies in the bin where the cumulative predictive mass reaches one half.
    median_bin = enc.encode(pa.Table.from_pandas(median, preserve_index=False))[:, x1] - enc.offsets[x1]
    cdf = np.cumsum(p_x1 / p_x1.sum(1, keepdims=True), axis=1)
    np.testing.assert_array_equal(median_bin, (cdf < 0.5).sum(1))
    assert median["c"].tolist() == out["c"].tolist()
    categories = enc.to_dict()["columns"][c]["categories"]
    assert out["c"].tolist() == [categories[k] for k in p_c.argmax(1)]
    pd.testing.assert_frame_equal(transform_with(fitted, rows, seed=123, numeric_point="mean"), out)


def test_point_estimate_of_several_draws(fitted, holed):
    draws = fitted.transform_samples(holed, 3)
    assert len(draws) == 3 and not draws[0].equals(draws[1])
    point = transform_with(fitted, holed, point="draws", n_samples=3, numeric_point="mean")
    missing = holed["x1"].isna()
    mean = sum(d["x1"][missing] for d in draws) / 3
    np.testing.assert_allclose(point["x1"][missing], mean, rtol=1e-12)
    n_missing = holed["n"].isna()
    mean_n = np.rint(sum(d["n"][n_missing].astype(float) for d in draws) / 3)
    np.testing.assert_array_equal(point["n"][n_missing].astype(float), mean_n)
    median = transform_with(fitted, holed, point="draws", n_samples=3, numeric_point="median")
    middle = np.median(np.stack([d["x1"][missing] for d in draws]), axis=0)
    np.testing.assert_array_equal(median["x1"][missing], middle)
    votes = pd.concat([d["c"][holed["c"].isna()] for d in draws], axis=1)
    winners = point["c"][holed["c"].isna()]
    for (_, row), winner in zip(votes.iterrows(), winners, strict=True):
        assert (row == winner).sum() == row.value_counts().max()


def test_sampling_steps_bound_a_draws_network_passes(fitted, holed, monkeypatch):
    """By default a row takes one sampler step per missing cell, and rows are batched by that count;
    with sampling_steps S every row takes S steps, all in one batch: at most S passes per draw."""
    model, passes = fitted.model_, []
    network = model.slot_log_probs
    monkeypatch.setattr(model, "slot_log_probs", lambda *a, **k: passes.append(1) or network(*a, **k))
    exact = fitted.transform_samples(holed, 1)[0]
    by_missing_count = len(passes)
    passes.clear()
    defaults = fitted.get_params()
    try:
        fast = fitted.set_params(sampling_steps=2).transform_samples(holed, 1)[0]
    finally:
        fitted.set_params(**defaults)
    assert len(passes) <= 2 < by_missing_count
    for out in (exact, fast):
        assert_observed_unchanged(out, holed)
        assert not out[fitted.feature_names_in_].isna().any().any()
    assert not fast.equals(exact)


def test_draws_are_joint_the_cells_of_a_row_drawn_given_one_another(fitted):
    """y = x1 + x2: with y given and x1, x2 missing, a joint draw of x2 follows the drawn x1 (their
    deviations from their means of draws are anti-correlated, and they add up to y more closely); cells
    decided in one step (sampling_steps=1) are drawn independently and lose that."""
    query = complete_table(300, seed=5)
    query[["x1", "x2"]] = np.nan
    defaults, scores = fitted.get_params(), {}
    try:
        for steps in (None, 1):
            draws = fitted.set_params(sampling_steps=steps).transform_samples(query, 8)
            x1, x2 = (np.stack([d[name].to_numpy(float) for d in draws]) for name in ("x1", "x2"))
            r1, r2 = x1 - x1.mean(axis=0), x2 - x2.mean(axis=0)
            correlation = (r1 * r2).sum() / np.sqrt((r1**2).sum() * (r2**2).sum())
            scores[steps] = correlation, np.abs(x1 + x2 - query["y"].to_numpy()).mean()
    finally:
        fitted.set_params(**defaults)
    (joint, joint_error), (apart, apart_error) = scores[None], scores[1]
    assert joint < -0.4 and abs(apart) < 0.2, scores
    assert joint_error < 0.8 * apart_error, scores


def test_unseen_category_kept_and_used_as_missing(fitted, holed):
    new = holed.head(20).copy()
    new["a"] = "zzz"
    with pytest.warns(UserWarning, match="column 'a'.*not seen in training.*'zzz'"):
        out = fitted.transform(new)
    assert (out["a"] == "zzz").all()
    assert not out[["b", "c", "x1", "y"]].isna().any().any()


def test_pandas_categories_of_numbers_and_unreadable_columns():
    """A categorical of numbers (Arrow's dictionary of doubles) is imputed, drawn and sampled in its own
    dtype (casting numbers to it was an ArrowNotImplementedError); a column Arrow cannot read (complex
    numbers) is one line naming it."""
    rng = np.random.default_rng(0)
    dose = pd.Series(pd.Categorical(rng.choice([1.5, 2.5, 5.0], 60))).mask(pd.Series(rng.random(60) < 0.3))
    df = pd.DataFrame({"dose": dose, "x": rng.normal(size=60)})
    imputer = MaskedDiffusionImputer(max_steps=5, **TINY).fit(df)
    for out in [imputer.transform(df), *imputer.transform_samples(df, 2), imputer.sample(5)]:
        assert out["dose"].dtype == df["dose"].dtype and out["dose"].notna().all()
        assert set(out["dose"]) <= {1.5, 2.5, 5.0}
    with pytest.raises(SeqdiffError, match="column 'z': Complex data not supported"):
        MaskedDiffusionImputer(max_steps=2, **TINY).fit(df.assign(z=1 + 1j))


def test_schema_mismatch_is_one_line_error(fitted, holed):
    with pytest.raises(SeqdiffError, match="column 'x1' is missing"):
        fitted.transform(holed.drop(columns="x1"))
    with pytest.raises(SeqdiffError, match="column 'x1' is numeric in the model's schema"):
        fitted.transform(holed.assign(x1="text"))
    with pytest.raises(
        SeqdiffError, match="expected a pandas DataFrame, a pyarrow Table or a 2-D array, got dict"
    ):
        fitted.transform(holed.to_dict())
    with pytest.raises(NotFittedError):
        MaskedDiffusionImputer().transform(holed)


def test_a_column_of_numbers_and_words_names_both_and_the_fix():
    """pandas reads a spreadsheet column of numbers and "n/a" as objects of both types: Arrow's
    "Expected bytes, got a 'float' object" said neither what was mixed nor what to do."""
    df = pd.DataFrame({"dose": pd.Series([1.5, "n/a", 2, None, "?"] * 20, dtype=object), "x": range(100)})
    with pytest.raises(
        SeqdiffError, match=r"column 'dose': holds 40 numbers and 40 text values \('n/a', '\?'\)"
    ):
        MaskedDiffusionImputer(max_steps=2, **TINY).fit(df)
    fixed = df.assign(dose=pd.to_numeric(df["dose"], errors="coerce"))  # the advice, followed
    assert MaskedDiffusionImputer(max_steps=2, **TINY).fit_transform(fixed)["dose"].notna().all()


def test_constant_all_missing_and_subsampled_tables(caplog):
    df = pd.DataFrame(
        {
            "k": [5.0] * 60,
            "empty": [np.nan] * 60,
            "c": ["s", "t", None] * 20,
            "x": [float(i % 7) if i % 5 else None for i in range(60)],
            "none": [None] * 60,  # null-typed
        }
    )
    df.loc[::4, "k"] = np.nan
    imputer = MaskedDiffusionImputer(max_steps=20, max_fit_rows=50, **TINY)
    with caplog.at_level(logging.INFO, logger="seqdiff"):
        imputer.fit(df)
    assert "random subsample of 50 of 60 rows" in caplog.text
    assert "column(s) 'empty', 'none' have no observed value: not modelled, left empty" in caplog.text
    out = imputer.transform(df)
    assert out["empty"].isna().all() and out["none"].isna().all()
    assert (out["k"] == 5.0).all()
    assert not out[["c", "x"]].isna().any().any()
    assert imputer.encoder_.skipped == ["empty"]


def test_single_row_table():
    row = pd.DataFrame({"a": ["x"], "v": [1.5], "n": [3]})
    imputer = MaskedDiffusionImputer(max_steps=10, **TINY).fit(row)
    pd.testing.assert_frame_equal(imputer.transform(row), row)
    gap = pd.DataFrame({"a": [None, "x"], "v": [1.5, None], "n": [3, 3]})
    out = imputer.transform(gap)
    assert out["a"].tolist() == ["x", "x"] and out["v"].tolist() == [1.5, 1.5]
    assert len(imputer.sample(4)) == 4


@pytest.mark.parametrize(
    "point,numeric_point", [("predictive", "mean"), ("predictive", "median"), ("draws", "median")]
)
def test_streaming_equals_in_memory(fitted, holed, tmp_path, point, numeric_point):
    table = pa.Table.from_pandas(holed, preserve_index=False)
    src = tmp_path / "holed.parquet"
    pq.write_table(table, src, row_group_size=100)
    out = tmp_path / "out.parquet"
    defaults = fitted.get_params()
    fitted.set_params(point=point, numeric_point=numeric_point, n_samples=2)
    try:
        report = impute_file(src, out, fitted, batch_rows=37, n_samples=2)
        streamed = pq.read_table(out)
        assert streamed.schema.equals(table.schema)
        assert report.rows == len(holed) and report.imputed_cells == int(
            holed.drop(columns="tags").isna().sum().sum()
        )
        assert streamed.equals(fitted.transform(table))
        csv = tmp_path / "holed.csv"
        pacsv.write_csv(table.drop_columns(["tags"]), csv)
        impute_file(csv, tmp_path / "from_csv.parquet", fitted, batch_rows=64, n_samples=2)
        assert pq.read_table(tmp_path / "from_csv.parquet").column("c").null_count == 0
        with pytest.raises(SeqdiffError, match="would overwrite the input"):
            impute_file(src, src, fitted)
        impute_file(src, src, fitted, batch_rows=100, in_place=True, n_samples=2)
        assert pq.read_table(src).equals(fitted.transform(table))
    finally:
        fitted.set_params(**defaults)
    sample, total = read_sample(csv, 50, seed=0, batch_rows=64)
    assert total == len(holed) and sample.num_rows == 50


def test_save_load_round_trip(fitted, holed, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = MaskedDiffusionImputer.load(tmp_path / "model", device="cpu")
    assert loaded.get_params() == {**fitted.get_params(), "categorical": [], "numeric": []}
    assert loaded.spec_.weighting == fitted.model_.weighting == "uniform"  # "auto" with MD4
    pd.testing.assert_frame_equal(loaded.transform(holed), fitted.transform(holed))
    pd.testing.assert_frame_equal(loaded.sample(20, seed=3), fitted.sample(20, seed=3))
    with pytest.raises(SeqdiffError, match="rates are learned with schedule='genmd4'"):
        loaded.learned_rates()
    with pytest.raises(SeqdiffError, match="not a seqdiff model"):
        MaskedDiffusionImputer.load(tmp_path)


def test_bundles_from_before_value_features_still_load(holed, tmp_path):
    """A bundle saved before numeric places existed (no "ordered", no "value_frequencies") loads as a
    bins-only model and imputes as it did; one saved before tail bins were split, or before training
    went past max_steps, says so in its parameters."""
    imputer = MaskedDiffusionImputer(**{**TINY, "max_steps": 5, "value_frequencies": 0}).fit(holed)
    imputer.save(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["spec"]["ordered"], config["spec"]["denoiser"]["value_frequencies"]
    del config["imputer"]["value_frequencies"], config["imputer"]["max_bin_width"]
    del config["imputer"]["max_extra_steps"], config["imputer"]["extend_tol"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    loaded = MaskedDiffusionImputer.load(tmp_path / "old")
    assert loaded.value_frequencies == 0 and loaded.model_.ordered is None
    assert loaded.max_bin_width == 0 and imputer.max_bin_width == 0.25
    assert loaded.max_extra_steps == 0 and imputer.max_extra_steps is None  # None: as many as max_steps
    pd.testing.assert_frame_equal(loaded.transform(holed), imputer.transform(holed))


def test_sample_rows_and_fixed_cells(fitted):
    rows = fitted.sample(60, seed=1)
    enc = fitted.encoder_
    assert list(rows.columns) == enc.columns and len(rows) == 60 and not rows.isna().any().any()
    assert (
        pa.Table.from_pandas(rows)
        .select(enc.columns)
        .schema.equals(enc.decode_sample(np.empty((0, len(enc.columns)), int)).schema)
    )
    fixed = fitted.sample(60, fixed={"a": "q", "b": "w", "x1": 0.25}, seed=2)
    assert (fixed["a"] == "q").all() and (fixed["b"] == "w").all() and (fixed["x1"] == 0.25).all()
    assert (fixed["c"] == LEVELS[relation(1, 2)]).mean() > 0.9  # conditioning carries through c = f(a, b)
    partial = pd.DataFrame({"a": ["p", None, "r"], "y": [None, 10.0, None]})
    out = fitted.sample(3, fixed=partial)
    assert out["a"][0] == "p" and out["a"][2] == "r" and out["y"][1] == 10.0
    with pytest.raises(SeqdiffError, match="column 'a': 2 value.*not seen in training.*'nope'"):
        fitted.sample(2, fixed={"a": "nope"})
    with pytest.raises(SeqdiffError, match="'tags' are not modelled"):
        fitted.sample(2, fixed={"tags": [1]})
    with pytest.raises(SeqdiffError, match="3 partial rows given for n_rows=5"):
        fitted.sample(5, fixed=partial)
    with pytest.raises(SeqdiffError, match="column 'x1': value does not fit"):
        fitted.sample(2, fixed={"x1": "abc"})


def test_genmd4_rates_tied_per_column(holed):
    imputer = MaskedDiffusionImputer(schedule="genmd4", tie_rates="column", max_steps=15, **TINY)
    rates = imputer.fit(holed).learned_rates()
    enc = imputer.encoder_
    assert len(rates) == enc.vocab_size and rates["rate"].is_monotonic_decreasing
    assert set(rates["token"]) == set(enc.token_names)
    per_column = rates.assign(column=rates["token"].str.split("=").str[0]).groupby("column")["rate"].nunique()
    assert (per_column == 1).all()
    imputed = imputer.transform(holed)
    assert not imputed.drop(columns="tags").isna().any().any()
    assert imputer.spec_.weighting == "elbo"  # "auto": GenMD4's rates learn through the ELBO


def test_sklearn_conventions_and_bad_params(holed):
    imputer = MaskedDiffusionImputer(dim=48, seed=3)
    assert imputer.get_params()["dim"] == 48 and clone(imputer).get_params() == imputer.get_params()
    assert imputer.set_params(n_samples=4).n_samples == 4
    for bad in [
        {"schedule": "nope"},
        {"tie_rates": "row"},
        {"n_samples": 0},
        {"seed": -1},
        {"dim": 30, "n_heads": 4},
        {"early_stopping": True, "validation_fraction": 0.0},
        {"n_iter_no_change": 0},
        {"loss_weighting": "l1"},
        {"precision": "16-true"},
        {"value_frequencies": -1},
        {"max_bin_width": -0.1},
        {"max_bin_width": float("nan")},
        {"max_extra_steps": -1},
        {"extend_tol": -0.01},
        {"schedule": "genmd4", "loss_weighting": "uniform"},
    ]:
        with pytest.raises(SeqdiffError):
            MaskedDiffusionImputer(**{**TINY, "max_steps": 1, **bad}).fit(holed)


def test_table_spec(complete):
    enc = TableEncoder.fit(complete)
    spec = table_spec(enc, ModelConfig(dim=16, n_layers=1, n_heads=2, schedule="genmd4", tie_rates="column"))
    assert spec.mask_id == enc.vocab_size and spec.denoiser.vocab_size == enc.vocab_size + 1
    assert spec.denoiser.positions == "learned" and spec.denoiser.max_len == len(enc.columns)
    assert spec.groups[-1] == len(enc.columns) and len(spec.groups) == enc.vocab_size + 1


def test_seqdiff_train_refuses_tables(tmp_path, capsys):
    """Table models are fitted one way, by the imputer (seqdiff impute --save-model)."""
    config = tmp_path / "table.yaml"
    config.write_text("modality: table\ndata: {train: train.parquet}\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "seqdiff impute" in err and "--save-model" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def run_cli(*argv: str) -> None:
    parser = argparse.ArgumentParser(prog="seqdiff")
    sub = parser.add_subparsers(dest="command", required=True)
    add_impute_parser(sub)
    kinds = sub.add_parser("sample").add_subparsers(dest="kind", required=True)
    add_sample_table_parser(kinds)
    args = parser.parse_args(list(argv))
    args.func(args)


def test_cli_impute_and_sample_table(holed, tmp_path):
    src = tmp_path / "holed.parquet"
    table = pa.Table.from_pandas(holed.drop(columns="tags"), preserve_index=False)
    pq.write_table(table, src)
    out, model = tmp_path / "out.parquet", tmp_path / "model"
    run_cli(
        "impute", str(src), "-o", str(out), "--max-steps", "2", "--save-model", str(model), "--device", "cpu"
    )
    filled = pq.read_table(out)
    assert filled.schema.equals(table.schema) and sum(c.null_count for c in filled.columns) == 0
    again = tmp_path / "again.parquet"
    run_cli("impute", str(src), "-o", str(again), "--checkpoint", str(model), "--batch-rows", "50")
    assert pq.read_table(again).equals(filled)
    drawn = tmp_path / "drawn.parquet"  # --samples K: K draws per cell instead of the predictive estimate
    run_cli("impute", str(src), "-o", str(drawn), "--checkpoint", str(model), "--samples", "3")
    assert not pq.read_table(drawn).equals(filled) and pq.read_table(drawn).schema.equals(table.schema)
    by_mean = tmp_path / "mean.parquet"  # the median is the default numeric estimate
    run_cli("impute", str(src), "-o", str(by_mean), "--checkpoint", str(model), "--numeric-point", "mean")
    mean_x1, median_x1 = pq.read_table(by_mean).column("x1"), filled.column("x1")
    assert not mean_x1.equals(median_x1) and pq.read_table(by_mean).column("c").equals(filled.column("c"))
    synth = tmp_path / "synth.parquet"
    run_cli(
        "sample",
        "table",
        "--checkpoint",
        str(model),
        "--rows",
        "12",
        "-o",
        str(synth),
        "--fix",
        "a=r",
        "--seed",
        "1",
    )
    rows = pq.read_table(synth).to_pandas()
    assert len(rows) == 12 and (rows["a"] == "r").all()
    partial = tmp_path / "partial.csv"
    partial.write_text("a,x1\np,\n,0.5\n")
    run_cli(
        "sample",
        "table",
        "--checkpoint",
        str(model),
        "--fix-file",
        str(partial),
        "-o",
        str(tmp_path / "p.csv"),
    )
    completed = pacsv.read_csv(tmp_path / "p.csv").to_pandas()
    assert completed["a"][0] == "p" and completed["x1"][1] == 0.5 and len(completed) == 2
    with pytest.raises(SeqdiffError, match="would overwrite the input"):
        run_cli("impute", str(src), "-o", str(src), "--checkpoint", str(model))
    with pytest.raises(SeqdiffError, match="only when fitting"):
        run_cli("impute", str(src), "-o", str(again), "--checkpoint", str(model), "--max-steps", "3")
    with pytest.raises(SeqdiffError, match="expected COLUMN=VALUE"):
        run_cli("sample", "table", "--checkpoint", str(model), "--rows", "2", "-o", str(synth), "--fix", "a")


def test_cli_fitting_flags_reach_the_imputer(holed, tmp_path):
    src, model = tmp_path / "holed.parquet", tmp_path / "model"
    pq.write_table(pa.Table.from_pandas(holed.drop(columns="tags"), preserve_index=False), src)
    flags = [
        "--max-steps",
        "3",
        "--bins",
        "4",
        "--fit-batch-rows",
        "16",
        "--max-minutes",
        "5",
        "--no-early-stopping",
        "--loss-weighting",
        "elbo",
        "--precision",
        "32-true",
        "--value-frequencies",
        "3",
        "--max-bin-width",
        "0",
        "--max-extra-steps",
        "7",
        "--extend-tol",
        "0.02",
        "--n-iter-no-change",
        "4",
    ]
    run_cli("impute", str(src), "-o", str(tmp_path / "out.parquet"), "--save-model", str(model), *flags)
    imputer = MaskedDiffusionImputer.load(model)
    assert (imputer.max_steps, imputer.n_bins, imputer.batch_rows, imputer.max_minutes) == (3, 4, 16, 5.0)
    assert not imputer.early_stopping and "best_step" not in imputer.training_
    assert imputer.loss_weighting == "elbo" and imputer.model_.weighting == "elbo"
    assert imputer.precision == imputer.training_["precision"] == "32-true"
    assert imputer.value_frequencies == imputer.spec_.denoiser.value_frequencies == 3
    assert imputer.max_bin_width == 0
    assert (imputer.max_extra_steps, imputer.extend_tol, imputer.n_iter_no_change) == (7, 0.02, 4)
    assert imputer.training_["steps"] == 3 and max(imputer.encoder_.vocab_sizes) <= 4
    with pytest.raises(SeqdiffError, match="--bins, --fit-batch-rows: only when fitting"):
        run_cli(
            "impute", str(src), "-o", str(tmp_path / "o.parquet"), "--checkpoint", str(model), *flags[2:6]
        )
    with pytest.raises(SeqdiffError, match="n_bins must be a positive integer"):
        run_cli("impute", str(src), "-o", str(tmp_path / "o.parquet"), "--bins", "0")


def test_hold_out_cells_picks_only_observed_cells():
    tokens = np.random.default_rng(0).integers(0, 5, (400, 6))  # 5 is the mask id: none yet
    tokens[::3, 2] = 5
    train, held = hold_out_cells(tokens, 5, 0.1, np.random.default_rng(1))
    picked = held != 5
    assert picked.sum() == round(0.1 * (tokens != 5).sum())
    assert (tokens[picked] != 5).all() and (held[picked] == tokens[picked]).all()
    assert (train[picked] == 5).all() and (train[~picked] == tokens[~picked]).all()
    _, capped = hold_out_cells(tokens, 5, 0.99, np.random.default_rng(1))
    assert (capped != 5).sum() == min(MAX_VALIDATION_CELLS, round(0.99 * (tokens != 5).sum()))


def test_early_stopping_stops_on_a_plateau_and_keeps_the_best_weights(holed):
    imputer = MaskedDiffusionImputer(
        **{**TINY, "lr": 2e-2},
        max_steps=5000,
        early_stopping=True,
        n_iter_no_change=2,
        validation_fraction=0.1,
    ).fit(holed)
    fit = imputer.training_
    steps, nll = zip(*fit["validation_history"], strict=True)
    assert fit["steps"] < 5000 and steps[-1] == fit["steps"]  # stopped early; scored where it stopped
    assert fit["steps"] - fit["best_step"] >= 2 * VALIDATION_EVERY
    assert fit["validation_nll_per_cell"] == min(nll) < nll[0]
    # The kept weights are the best check's: rescoring the same held-out cells gives its NLL.
    table = pa.Table.from_pandas(holed, preserve_index=False)
    tokens = imputer.encoder_.encode(table)
    train, held = hold_out_cells(tokens, imputer.encoder_.mask_id, 0.1, np.random.default_rng(imputer.seed))
    assert fit["held_out_cells"] == (held != imputer.encoder_.mask_id).sum()
    within = imputer.encoder_.within(table)
    score = HeldOutCells(train, within, held, imputer.encoder_.mask_id)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fit["precision"] == "bf16-mixed"):
        rescored = score(imputer.model_)  # checks run in the training precision
    assert rescored == pytest.approx(fit["validation_nll_per_cell"], rel=1e-5)
    assert_observed_unchanged(imputer.transform(holed), holed)


def test_a_narrow_table_trains_on_4096_cells_per_step():
    rng = np.random.default_rng(0)
    narrow = pd.DataFrame(rng.normal(size=(2000, 4)), columns=list("abcd"))
    narrow[narrow > 1.5] = np.nan
    imputer = MaskedDiffusionImputer(dim=16, n_layers=1, n_heads=2, max_steps=2, early_stopping=False)
    training = imputer.set_params(device="cpu").fit(narrow).training_
    assert (training["batch_rows"], training["schedule_steps"], training["steps"]) == (1024, 2, 2)
    assert imputer.batch_rows is None  # the parameter stays as given (scikit-learn's rule)


def test_training_goes_past_max_steps_only_while_the_held_out_cells_improve(holed):
    def fit(**params) -> dict:
        settings = {**TINY, "max_steps": 200, "n_iter_no_change": 50, "validation_fraction": 0.1}
        return MaskedDiffusionImputer(**settings, **params).fit(holed).training_

    extended = fit(max_extra_steps=400, extend_tol=0.0)
    assert extended["schedule_steps"] == 200 < extended["steps"] <= 600
    best = np.minimum.accumulate([nll for _, nll in extended["validation_history"]])
    steps = [step for step, _ in extended["validation_history"]]
    # The rule looks back a quarter of max_steps, at least one check: here the previous check.
    # Every check from step 200 on but the last found a lower best NLL than the one before.
    for i in range(steps.index(200), len(steps) - 1):
        assert best[i] < best[i - 1]
    if extended["steps"] < 600:  # stopped by the rule, not by the cap
        assert best[-1] == best[-2]
    # A demand it cannot meet, no extra steps, no held-out cells: training ends with the schedule.
    assert fit(max_extra_steps=400, extend_tol=0.5)["steps"] == 200
    assert fit(max_extra_steps=0, extend_tol=0.0)["steps"] == 200
    assert fit(max_extra_steps=400, extend_tol=0.0, early_stopping=False)["steps"] == 200


def test_same_seed_same_imputation_from_scratch(holed):
    small = holed.iloc[:200]
    first = MaskedDiffusionImputer(max_steps=10, seed=3, device="cpu").fit(small).transform(small)
    second = MaskedDiffusionImputer(max_steps=10, seed=3, device="cpu").fit(small).transform(small)
    other = MaskedDiffusionImputer(max_steps=10, seed=4, device="cpu").fit(small).transform(small)
    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(other)
