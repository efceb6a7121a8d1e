"""NumPy arrays and lists of rows, as scikit-learn's imputers take them: an array in, an array out, its
columns x0, x1, ... (or a fitted model's, in order), so the imputer works inside a `Pipeline`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.imputer import MaskedDiffusionImputer

TINY = {"dim": 16, "n_layers": 1, "n_heads": 2, "max_steps": 60, "lr": 5e-3, "device": "cpu"}


@pytest.fixture(scope="module")
def holed() -> tuple[np.ndarray, np.ndarray]:
    """(complete, holed): x3 = 2 x0 (plus a little noise), 20% of the cells hidden."""
    rng = np.random.default_rng(0)
    complete = rng.normal(size=(300, 4))
    complete[:, 3] = 2 * complete[:, 0] + 0.05 * rng.normal(size=300)
    holed = complete.copy()
    holed[rng.random(holed.shape) < 0.2] = np.nan
    return complete, holed


def test_an_array_in_gives_the_frames_values_as_an_array(holed):
    _, X = holed
    imputer = MaskedDiffusionImputer(**TINY).fit(X)
    out = imputer.transform(X)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == X.shape
    assert not np.isnan(out).any() and (out[~np.isnan(X)] == X[~np.isnan(X)]).all()
    assert list(imputer.feature_names_in_) == ["x0", "x1", "x2", "x3"]
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2", "x3"])
    assert np.array_equal(out, MaskedDiffusionImputer(**TINY).fit(frame).transform(frame).to_numpy())
    assert np.array_equal(imputer.transform(X.tolist()), out)  # a list of rows too
    draws = imputer.transform_samples(X, 2)
    assert [type(d) for d in draws] == [np.ndarray, np.ndarray] and not np.isnan(draws[1]).any()


def test_a_model_fitted_on_a_frame_reads_an_arrays_columns_in_order(holed):
    _, X = holed
    frame = pd.DataFrame(X, columns=["age", "bmi", "bp", "dose"])
    imputer = MaskedDiffusionImputer(**TINY).fit(frame)
    assert np.array_equal(imputer.transform(X), imputer.transform(frame).to_numpy())
    with pytest.raises(
        SeqdiffError,
        match=r"X has 3 features, but MaskedDiffusionImputer is expecting 4 features as input \(age, bmi",
    ):
        imputer.transform(X[:, :3])
    with pytest.raises(SeqdiffError, match=r"expected rows x columns \(a 2-D array\), got shape \(300,\)"):
        MaskedDiffusionImputer(**TINY).fit(X[:, 0])


def test_an_object_array_keeps_numbers_and_text_apart():
    rows = [[1.0, "a"], [np.nan, "b"], [3.0, None], [2.0, "a"]] * 30
    out = MaskedDiffusionImputer(**TINY).fit_transform(np.array(rows, dtype=object))
    assert out.dtype == object and out.shape == (120, 2)
    assert all(isinstance(v, float) and not np.isnan(v) for v in out[:, 0])
    assert set(out[:, 1]) <= {"a", "b"}


def test_in_a_scikit_learn_pipeline(holed):
    """The imputer fills what the regression cannot take (NaN), inside the real scikit-learn Pipeline."""
    complete, X = holed
    y = complete[:, 3]
    pipe = make_pipeline(MaskedDiffusionImputer(**{**TINY, "max_steps": 300}), LinearRegression())
    pipe.fit(X[:, :3], y)
    # x3 is 2 x0: the regression learns it from the imputed x0 (where x0 was hidden, the model's guess).
    assert pipe.score(complete[:, :3], y) > 0.8
    assert pipe.predict(X[:5, :3]).shape == (5,)


def test_set_output_names_an_arrays_output(holed):
    """scikit-learn's `set_output(transform="pandas")` asks for `get_feature_names_out` (it was missing:
    "`set_output` is not available")."""
    _, X = holed
    frame = MaskedDiffusionImputer(**TINY).set_output(transform="pandas").fit_transform(X)
    assert isinstance(frame, pd.DataFrame) and frame.columns.tolist() == ["x0", "x1", "x2", "x3"]
    named = pd.DataFrame(X, columns=["age", "bmi", "bp", "dose"])
    pipe = make_pipeline(MaskedDiffusionImputer(**TINY), StandardScaler()).set_output(transform="pandas")
    scaled = pipe.fit_transform(named)
    assert scaled.columns.tolist() == ["age", "bmi", "bp", "dose"] and scaled.notna().all().all()
    assert pipe[0].get_feature_names_out().tolist() == ["age", "bmi", "bp", "dose"]
    with pytest.raises(SeqdiffError, match="input_features: 2 names for 4 columns"):
        pipe[0].get_feature_names_out(["a", "b"])


@parametrize_with_checks([MaskedDiffusionImputer(max_steps=3, device="cpu")])
def test_scikit_learns_estimator_checks(estimator, check):
    """scikit-learn's own checks of an estimator's API: cloning, fitted attributes, array and frame
    input, feature counts, error types and messages, pickling, idempotent fits."""
    check(estimator)
