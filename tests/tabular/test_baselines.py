"""Missingness masks, imputation metrics and the classical baselines."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from threadpoolctl import threadpool_limits

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.schema import infer_schema

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # pipelines/ is a script folder, not part of the installed package
from pipelines.masks import (  # noqa: E402
    MIN_PAIR_ROWS,
    column_metrics,
    imputable_columns,
    make_missing_mask,
    metrics,
    pair_dependence,
)
from pipelines.tabular_baselines import (  # noqa: E402
    BASELINES,
    mean_mode_impute,
    mice_impute,
    missforest_forest,
)

DATA = ROOT.parent / "shared" / "data" / "tabular"
FAST = {
    "missforest": {"n_estimators": 10, "max_iter": 3},
    "missforest-all-features": {"n_estimators": 10, "max_iter": 3},
    "miceforest": {"iterations": 2, "num_iterations": 5},
}


@pytest.fixture(autouse=True)
def one_blas_thread():
    # Multi-threaded BLAS on a shared 2-core machine is many times slower than one thread here.
    with threadpool_limits(1):
        yield


def complete_sample(name: str, n: int) -> pd.DataFrame:
    df = pq.read_table(DATA / f"{name}.parquet").to_pandas().dropna()
    return df.sample(n, random_state=0).reset_index(drop=True)


@pytest.mark.parametrize("mechanism", ["mcar", "mar", "mnar"])
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_mask_rates(mechanism, rate):
    df = complete_sample("adult", 2000)
    mask = make_missing_mask(df, rate, mechanism, rng=0)
    assert mask.shape == df.shape and mask.dtype == bool
    assert abs(mask.mean() - rate) < 0.03
    observed_columns = (~mask).all(axis=0)
    if mechanism == "mar":
        # DiffPuter: floor(q * 16) conditioning columns stay observed, q = 0.3 up to a 30% rate, else 0.1.
        assert observed_columns.sum() == (4 if rate <= 0.3 else 1)
        assert (mask[:, ~observed_columns].mean(axis=0) > 0).all()
    else:
        assert not observed_columns.any()


def test_mar_depends_on_observed_values():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=20_000), "b": rng.normal(size=20_000)})
    mask = make_missing_mask(df, 0.25, "mar", rng=1, obs_fraction=0.5)
    observed = int(np.flatnonzero(~mask.any(axis=0))[0])
    hidden, driver = mask[:, 1 - observed], df.iloc[:, observed].to_numpy()
    # The logistic weight has unit scale, so missingness differs clearly between low and high drivers.
    assert abs(hidden[driver > 1].mean() - hidden[driver < -1].mean()) > 0.3
    assert abs(mask.mean() - 0.25) < 0.02


def test_mask_errors_and_skipped_columns():
    df = pd.DataFrame({"x": np.arange(10.0), "when": pd.date_range("2024-01-01", periods=10)})
    mask = make_missing_mask(df, 0.5, "mcar", rng=0)
    assert not mask[:, 1].any()  # date/time columns are never masked
    with pytest.raises(SeqdiffError, match="at least 2 imputable columns"):
        make_missing_mask(df, 0.3, "mar", rng=0)
    with pytest.raises(SeqdiffError, match="between 0 and 1"):
        make_missing_mask(df, 1.2)
    with pytest.raises(SeqdiffError, match="unknown missingness mechanism"):
        make_missing_mask(df, 0.3, "mnr")


def test_metrics():
    df = complete_sample("california", 500)
    mask = make_missing_mask(df, 0.3, "mcar", rng=0)
    perfect = metrics(df, df, mask)
    assert perfect["mae"] == perfect["rmse"] == 0 and perfect["accuracy"] == 1
    assert perfect["n_numeric"] + perfect["n_categorical"] == mask.sum()
    mean = metrics(df, mean_mode_impute(df.mask(mask)), mask)
    assert 0.5 < mean["mae"] < 1.0 and mean["rmse"] > mean["mae"] and mean["accuracy"] < 0.7
    with pytest.raises(SeqdiffError, match="column 'longitude' still has missing cells"):
        metrics(df, df.mask(mask), mask)


def test_pair_dependence_tells_joint_draws_from_independent_ones():
    """a = x + e, b = -x + e': correlation -0.8. Every row misses a and b, so the conditional
    distribution is the joint one; c misses too few cells with the others to be scored."""
    rng = np.random.default_rng(0)

    def rows(n):
        x = rng.normal(size=n)
        return pd.DataFrame({"a": x + 0.5 * rng.normal(size=n), "b": -x + 0.5 * rng.normal(size=n)})

    truth = rows(2000).assign(c=rng.normal(size=2000), k=rng.choice(["u", "v"], 2000))
    mask = np.zeros((2000, 4), bool)
    mask[:, :2] = True
    mask[: MIN_PAIR_ROWS - 1, 2] = True
    joint = [truth.assign(**rows(2000)) for _ in range(10)]
    apart = [truth.assign(a=rows(2000)["a"], b=rows(2000)["b"]) for _ in range(10)]
    kept, lost = (pair_dependence(truth, draws, mask) for draws in (joint, apart))
    assert kept["dependent_pairs"] == lost["dependent_pairs"] == 1
    assert abs(kept["pair_corr_truth"] - 0.8) < 0.05 and abs(kept["pair_corr_draws"] - 0.8) < 0.05
    # The true values' deviations from a noisier mean of draws: a little less correlated.
    assert abs(lost["pair_corr_draws"]) < 0.05 and 0.6 < lost["pair_corr_truth"] < 0.8
    unscored = pair_dependence(truth, joint, np.zeros_like(mask))
    assert unscored["dependent_pairs"] == 0 and np.isnan(unscored["pair_corr_draws"])


def test_column_metrics_split_the_pooled_scores():
    df = complete_sample("california", 500)
    mask = make_missing_mask(df, 0.3, "mcar", rng=0)
    imputed = mean_mode_impute(df.mask(mask))
    pooled, per_column = metrics(df, imputed, mask), column_metrics(df, imputed, mask)
    assert list(per_column) == list(df.columns)  # every column has hidden cells at this rate
    numeric = {k: v for k, v in per_column.items() if v["kind"] == "numeric"}
    assert sum(v["n"] for v in numeric.values()) == pooled["n_numeric"]
    assert sum(v["mae"] * v["n"] for v in numeric.values()) / pooled["n_numeric"] == pytest.approx(
        pooled["mae"]
    )
    # The mode of ocean_proximity is right for exactly the hidden cells that hold the mode.
    hidden = df["ocean_proximity"][mask[:, df.columns.get_loc("ocean_proximity")]]
    mode = df["ocean_proximity"][~mask[:, df.columns.get_loc("ocean_proximity")]].mode()[0]
    assert per_column["ocean_proximity"]["accuracy"] == pytest.approx((hidden == mode).mean())
    assert per_column["longitude"]["mae"] > 0.5  # the mean is far from most longitudes


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_fills_only_missing_cells(name):
    df = complete_sample("adult", 500)
    df["n_children"] = pd.array(np.arange(500) % 4, dtype="Int64")
    df["grade"] = df["education"].astype("category")
    df["n_cars"] = pd.array(np.arange(500) % 3, dtype="Int64")
    schema = infer_schema(df, numeric=["n_children"])
    holed = df.mask(make_missing_mask(df, 0.3, "mcar", rng=0))
    out = BASELINES[name](holed, schema, **FAST.get(name, {}))
    assert list(out.columns) == list(df.columns) and out.dtypes.equals(df.dtypes)
    assert not out.isna().any().any()
    observed = holed.notna()
    for column in df.columns:
        assert out[column][observed[column]].equals(holed[column][observed[column]])
    assert set(out["grade"]) <= set(df["grade"].cat.categories)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_keeps_unimputable_columns(name):
    df = pd.DataFrame(
        {
            "x": [1.0, None, 3.0, 4.0, 5.0, 6.0],
            "c": ["a", "b", None, "b", "a", "b"],
            "nothing": [np.nan] * 6,
            "when": pd.to_datetime(["2024-01-01", None, "2024-01-03", None, "2024-01-05", "2024-01-06"]),
        }
    )
    out = BASELINES[name](df, **({"n_neighbors": 2} if name == "knn" else FAST.get(name, {})))
    assert out[["x", "c"]].notna().all().all()
    assert out["nothing"].isna().all() and out["when"].equals(df["when"])


def test_mice_learns_a_linear_relation():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.normal(size=1000)})
    df["c"] = df["a"] + df["b"]
    df["g"] = np.where(df["a"] > 0, "pos", "neg")
    mask = make_missing_mask(df, 0.2, "mcar", rng=1)
    holed = df.mask(mask)
    c = df.columns.get_loc("c")
    column_mask = np.zeros_like(mask)
    column_mask[:, c] = mask[:, c]
    mice = metrics(df, mice_impute(holed), column_mask)["mae"]
    mean = metrics(df, mean_mode_impute(holed), column_mask)["mae"]
    assert mice < 0.3 * mean
    assert imputable_columns(df) == (["a", "b", "c"], ["g"])


def test_knn_fill_equals_sklearn_knn_imputer():
    from sklearn.impute import KNNImputer

    from pipelines.tabular_baselines import knn_fill

    rng = np.random.default_rng(0)
    numeric = rng.normal(size=(500, 4))
    # Columns 0-1 always observed: every pair of rows has a continuous distance, so no ties (whose
    # order is arbitrary in both implementations).
    numeric[:, 2:][rng.random((500, 2)) < 0.3] = np.nan
    one_hot = np.eye(3)[rng.integers(0, 3, 500)]
    one_hot[rng.random(500) < 0.3] = np.nan  # a missing category: its whole block
    x = np.column_stack([numeric, one_hot])
    x[7] = np.nan  # nothing observed: no finite distance, so the column means
    x[8:20, 2:4] = np.nan
    want = KNNImputer(n_neighbors=5, keep_empty_features=True).fit_transform(x)
    got = knn_fill(x, [[0], [1], [2], [3], [4, 5, 6]], n_neighbors=5, chunk=64)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_missforest_reference_settings():
    regression, classification = missforest_forest("numeric"), missforest_forest("categorical")
    assert regression.get_params()["max_features"] == "sqrt"
    assert regression.get_params()["min_samples_leaf"] == 5
    assert regression.get_params()["n_estimators"] == 100
    assert classification.get_params()["max_features"] == "sqrt"
    assert classification.get_params()["min_samples_leaf"] == 1
    all_features = missforest_forest("numeric", reference=False).get_params()
    assert all_features["max_features"] == 1.0 and all_features["min_samples_leaf"] == 1


@pytest.mark.parametrize("name", ["missforest", "missforest-all-features", "miceforest"])
def test_new_forest_baselines_fill_every_hole_and_learn(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    df = pd.DataFrame(
        {
            "x": x,
            "y": 3 * x + rng.normal(scale=0.1, size=400),
            "g": np.where(x > 0, "pos", "neg"),
            "one": ["only"] * 400,  # a single category: nothing to learn, still filled
        }
    )
    mask = make_missing_mask(df, 0.2, "mcar", rng=1)
    holed = df.mask(mask)
    out = BASELINES[name](holed, **FAST[name])
    assert not out.isna().any().any()
    forest = metrics(df, out, mask)
    mean = metrics(df, mean_mode_impute(holed), mask)
    assert forest["mae"] < 0.5 * mean["mae"] and forest["accuracy"] > mean["accuracy"]
