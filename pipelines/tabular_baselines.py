"""Classical imputation baselines for the tabular benchmark: mean/mode, MICE, MissForest (reference
settings, and an all-features variant), miceforest and KNN.

Each function takes a DataFrame with missing cells (NaN / None / NA) and returns a copy with the same
columns and dtypes where every missing cell of an imputable column (see
`pipelines.masks.imputable_columns`) is filled and every observed cell is unchanged. Numeric
columns are modelled z-scored (with their observed mean / std) and rounded back for integer dtypes;
categorical columns are one-hot (MICE, KNN), ordinal (MissForest) or pandas categoricals (miceforest)
internally. Columns with no
observed value, passthrough and date/time columns are returned unchanged.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [1.0, None, 3.0], "c": ["a", "a", None]})
    >>> mean_mode_impute(df).to_dict("list")
    {'x': [1.0, 2.0, 3.0], 'c': ['a', 'a', 'a']}
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import BayesianRidge, LogisticRegression

from pipelines.masks import imputable_columns
from seqdiff.tabular.schema import Schema

Model = Callable[[str, int], Any]  # (kind, column index) -> estimator to fit


def _one_hot(codes: np.ndarray, n_categories: int) -> np.ndarray:
    """One-hot rows; a missing code (-1) gives a row of NaN."""
    out = np.zeros((len(codes), n_categories))
    observed = codes >= 0
    out[observed, codes[observed]] = 1.0
    out[~observed] = np.nan
    return out


def _stack(columns: list[np.ndarray], n_rows: int) -> np.ndarray:
    return np.column_stack(columns) if columns else np.empty((n_rows, 0))


@dataclass
class _Frame:
    """The imputable columns of a DataFrame as z-scored numbers and category codes (-1 = missing)."""

    df: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    z: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    codes: np.ndarray
    categories: list[np.ndarray]

    @classmethod
    def of(cls, df: pd.DataFrame, schema: Schema | None) -> _Frame:
        numeric, categorical = imputable_columns(df, schema)
        numeric = [c for c in numeric if df[c].notna().any()]
        categorical = [c for c in categorical if df[c].notna().any()]
        x = _stack([df[c].to_numpy(np.float64, na_value=np.nan) for c in numeric], len(df))
        mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
        std = np.where(std > 0, std, 1.0)
        factorized = [pd.factorize(df[c], sort=True) for c in categorical]
        codes = _stack([f[0] for f in factorized], len(df)).astype(np.int64)
        categories = [np.asarray(f[1], dtype=object) for f in factorized]
        return cls(df, numeric, categorical, (x - mean) / std, mean, std, codes, categories)

    @property
    def order(self) -> list[tuple[str, int]]:
        """(kind, index) of the columns with missing cells, fewest missing first."""
        counts = [("numeric", i, n) for i, n in enumerate(np.isnan(self.z).sum(axis=0))]
        counts += [("categorical", i, n) for i, n in enumerate((self.codes < 0).sum(axis=0))]
        return [(kind, i) for kind, i, n in sorted(counts, key=lambda t: t[2]) if n > 0]

    def initial(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (0 in z units) and mode (the first category on ties) fills."""
        z = np.nan_to_num(self.z)
        codes = self.codes.copy()
        for j in range(codes.shape[1]):
            column = codes[:, j]
            column[column < 0] = np.bincount(column[column >= 0]).argmax()
        return z, codes

    def design(
        self, z: np.ndarray, codes: np.ndarray, one_hot: bool, exclude: tuple[str, int] | None = None
    ) -> np.ndarray:
        """Feature matrix: z-scored numeric columns then categorical ones, without `exclude`."""
        blocks = [z[:, [i]] for i in range(z.shape[1]) if exclude != ("numeric", i)]
        for j, categories in enumerate(self.categories):
            if exclude != ("categorical", j):
                blocks.append(
                    _one_hot(codes[:, j], len(categories)) if one_hot else codes[:, [j]].astype(float)
                )
        return _stack(blocks, len(z))

    def sweep(self, z: np.ndarray, codes: np.ndarray, one_hot: bool, model: Model) -> None:
        """One round of chained equations, in place: refit each incomplete column on the others."""
        for kind, i in self.order:
            x = self.design(z, codes, one_hot, exclude=(kind, i))
            if x.shape[1] == 0:
                return
            if kind == "numeric":
                missing = np.isnan(self.z[:, i])
                z[missing, i] = model(kind, i).fit(x[~missing], z[~missing, i]).predict(x[missing])
            else:
                missing = self.codes[:, i] < 0
                target = codes[~missing, i]
                if len(np.unique(target)) > 1:
                    codes[missing, i] = model(kind, i).fit(x[~missing], target).predict(x[missing])

    def to_frame(self, z: np.ndarray, codes: np.ndarray) -> pd.DataFrame:
        """A copy of the input with its missing imputable cells taken from `z` / `codes`."""
        out = self.df.copy()

        def fill(name: str, values: np.ndarray) -> None:
            column = out[name]
            out[name] = column.where(
                column.notna(), pd.Series(values, index=column.index).astype(column.dtype)
            )

        for i, name in enumerate(self.numeric):
            values = z[:, i] * self.std[i] + self.mean[i]
            fill(name, np.rint(values) if pd.api.types.is_integer_dtype(out[name].dtype) else values)
        for j, name in enumerate(self.categorical):
            fill(name, self.categories[j][codes[:, j]])
        return out


def mean_mode_impute(df: pd.DataFrame, schema: Schema | None = None) -> pd.DataFrame:
    """Fill numeric cells with the column's observed mean and categorical cells with its mode.

    Example:
        >>> mean_mode_impute(pd.DataFrame({"x": [1.0, None, 5.0]}))["x"].tolist()
        [1.0, 3.0, 5.0]
    """
    frame = _Frame.of(df, schema)
    return frame.to_frame(*frame.initial())


def mice_impute(df: pd.DataFrame, schema: Schema | None = None, *, n_rounds: int = 5) -> pd.DataFrame:
    """Chained equations (IterativeImputer style, mixed types): start from mean/mode, then `n_rounds`
    times refit each incomplete column, fewest missing first, on all other columns (numeric z-scored,
    categorical one-hot): BayesianRidge for numeric, LogisticRegression for categorical; predictions
    (posterior means / most probable class) replace the missing cells.

    Example:
        >>> x = np.arange(20.0)
        >>> df = pd.DataFrame({"a": x, "b": 2 * x}).astype(float)
        >>> df.loc[3, "b"] = None
        >>> round(float(mice_impute(df)["b"][3]), 1)
        6.0
    """
    frame = _Frame.of(df, schema)
    z, codes = frame.initial()
    models: dict[tuple[str, int], Any] = {}

    def model(kind: str, i: int) -> Any:
        # One estimator per column, warm-started from the previous round: later rounds converge quickly.
        if (kind, i) not in models:
            models[kind, i] = BayesianRidge() if kind == "numeric" else LogisticRegression(warm_start=True)
        return models[kind, i]

    with warnings.catch_warnings():
        # Chained equations refit every round, so early fits need not be fully converged.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(n_rounds):
            frame.sweep(z, codes, True, model)
    return frame.to_frame(z, codes)


def missforest_forest(
    kind: str, *, reference: bool = True, n_estimators: int = 100, n_jobs: int = 1, seed: int = 0
) -> ExtraTreesRegressor | ExtraTreesClassifier:
    """The forest MissForest fits for one column of `kind` ("numeric" or "categorical").

    `reference`: R missForest's settings, as ExtraTrees: `n_estimators` trees trying
    mtry = floor(sqrt(p)) features at each split (``max_features="sqrt"``), leaves of at least 5 rows
    for regression and 1 for classification (randomForest's default node sizes). Otherwise the
    all-features variant: every feature at each split and leaves of 1 for regression (sklearn's
    ExtraTreesRegressor defaults), the same classifier.

    Example:
        >>> missforest_forest("numeric").get_params()["min_samples_leaf"]
        5
    """
    if kind == "numeric":
        leaf, features = (5, "sqrt") if reference else (1, 1.0)
        return ExtraTreesRegressor(
            n_estimators=n_estimators,
            max_features=features,
            min_samples_leaf=leaf,
            n_jobs=n_jobs,
            random_state=seed,
        )
    return ExtraTreesClassifier(
        n_estimators=n_estimators, max_features="sqrt", min_samples_leaf=1, n_jobs=n_jobs, random_state=seed
    )


def _missforest(df: pd.DataFrame, schema: Schema | None, max_iter: int, forest: Model) -> pd.DataFrame:
    """The MissForest loop (Stekhoven & Buehlmann 2012), with `forest(kind, column)` for each column.

    Start from mean/mode; each iteration refits every incomplete column, fewest missing first, on the
    other columns (categories as ordinal codes). The change per iteration is
    ``sum((new - old)^2) / sum(new^2)`` over the z-scored numeric matrix and the fraction of changed
    categorical imputations; stop as soon as it increases for every type present and return the
    previous imputation, or after `max_iter` iterations.
    """
    frame = _Frame.of(df, schema)
    z, codes = frame.initial()
    present = (np.isnan(frame.z).any(), (frame.codes < 0).any())
    missing_categorical = max(int((frame.codes < 0).sum()), 1)
    previous = (np.inf, np.inf)
    for _ in range(max_iter):
        old_z, old_codes = z.copy(), codes.copy()
        frame.sweep(z, codes, False, forest)
        change = (
            float(((z - old_z) ** 2).sum() / max((z**2).sum(), np.finfo(float).tiny)),
            float((codes != old_codes).sum() / missing_categorical),
        )
        if all(new > old for new, old, p in zip(change, previous, present, strict=True) if p):
            return frame.to_frame(old_z, old_codes)
        previous = change
    return frame.to_frame(z, codes)


def missforest_impute(
    df: pd.DataFrame,
    schema: Schema | None = None,
    *,
    max_iter: int = 10,
    n_estimators: int = 100,
    reference: bool = True,
    n_jobs: int = 1,
    seed: int = 0,
) -> pd.DataFrame:
    """MissForest (`_missforest`, up to `max_iter` iterations) with `n_estimators` extremely randomised
    trees per column (`missforest_forest`): with `reference`, R missForest's settings (floor(sqrt(p))
    features tried at each split, leaves of 5 rows for regression); without, the all-features variant
    (regression trees that try every feature at each split, grown to leaves of one row).

    Example:
        >>> x = np.arange(40.0)
        >>> df = pd.DataFrame({"a": x, "b": x > 20}).astype({"b": object})
        >>> df.loc[5, "b"] = None
        >>> missforest_impute(df, n_estimators=10, max_iter=2)["b"][5]
        False
        >>> df = pd.DataFrame({"a": x, "b": 2 * x})
        >>> df.loc[5, "b"] = None
        >>> bool(0 < missforest_impute(df, n_estimators=10, max_iter=2, reference=False)["b"][5] < 80)
        True
    """

    def forest(kind: str, i: int) -> Any:
        return missforest_forest(
            kind, reference=reference, n_estimators=n_estimators, n_jobs=n_jobs, seed=seed
        )

    return _missforest(df, schema, max_iter, forest)


def miceforest_impute(
    df: pd.DataFrame,
    schema: Schema | None = None,
    *,
    iterations: int = 5,
    n_jobs: int = 1,
    seed: int = 0,
    **lightgbm: Any,
) -> pd.DataFrame:
    """miceforest (LightGBM chained equations, its default random-forest boosting) with `iterations`
    iterations and no mean matching (``mean_match_candidates=0``: a numeric cell takes the prediction,
    a categorical one the most probable class); `lightgbm` overrides miceforest's LightGBM parameters.

    Numeric columns are z-scored and categorical ones pandas categoricals of their codes; a categorical
    column with a single observed category is filled with it (there is nothing to learn). Needs the
    ``miceforest`` package (the ``dev`` extra).

    Example:
        >>> x = np.arange(60.0)
        >>> df = pd.DataFrame({"a": x, "b": np.where(x > 30, "hi", "lo")})
        >>> df.loc[[5, 50], "b"] = None
        >>> miceforest_impute(df, num_iterations=5)["b"][[5, 50]].tolist()
        ['lo', 'hi']
    """
    (done,) = miceforest_datasets(
        df,
        schema,
        datasets=1,
        mean_match_candidates=0,
        iterations=iterations,
        n_jobs=n_jobs,
        seed=seed,
        **lightgbm,
    )
    return done


def miceforest_datasets(
    df: pd.DataFrame,
    schema: Schema | None = None,
    *,
    datasets: int,
    mean_match_candidates: int = 5,
    iterations: int = 5,
    n_jobs: int = 1,
    seed: int = 0,
    **lightgbm: Any,
) -> list[pd.DataFrame]:
    """`datasets` completed tables from miceforest (multiple imputation), as `miceforest_impute` sets it
    up but with mean matching: a numeric cell takes one of the `mean_match_candidates` observed values
    whose predictions are nearest its own (miceforest's default, "normal", 5 candidates); a categorical
    cell a class drawn from the predicted probabilities ("fast": the default, "normal", matches on
    log-odds, which are infinite for the zero probabilities LightGBM gives adult's rare categories)."""
    import miceforest

    frame = _Frame.of(df, schema)
    z, codes = frame.initial()
    data = {f"n{i}": frame.z[:, i] for i in range(frame.z.shape[1])}
    learned = []
    for j, categories in enumerate(frame.categories):
        observed = np.unique(frame.codes[frame.codes[:, j] >= 0, j])
        column = frame.codes[:, j] if len(observed) > 1 else codes[:, j]
        if len(observed) > 1 and (column < 0).any():
            learned.append(f"c{j}")
        data[f"c{j}"] = pd.Categorical.from_codes(column, categories=range(len(categories)))
    learned += [f"n{i}" for i in range(frame.z.shape[1]) if np.isnan(frame.z[:, i]).any()]
    if not learned:
        return [frame.to_frame(z, codes)] * datasets
    kernel = miceforest.ImputationKernel(
        pd.DataFrame(data),
        num_datasets=datasets,
        variable_schema=learned,
        mean_match_candidates=mean_match_candidates,
        mean_match_strategy={name: "fast" if name[0] == "c" else "normal" for name in learned},
        save_all_iterations_data=False,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="miceforest")  # its pandas deprecation warnings
        kernel.mice(iterations, num_threads=n_jobs, **lightgbm)
        completed = [kernel.complete_data(k) for k in range(datasets)]
    n_numeric, n_categorical = z.shape[1], codes.shape[1]
    return [
        frame.to_frame(
            _stack([done[f"n{i}"].to_numpy(np.float64) for i in range(n_numeric)], len(df)),
            _stack([done[f"c{j}"].cat.codes.to_numpy(np.int64) for j in range(n_categorical)], len(df)),
        )
        for done in completed
    ]


def _nan_euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sklearn's nan_euclidean_distances(a, b), from three matrix products: the squared differences
    over the coordinates present in both rows, scaled by n_features / n_present (NaN if none)."""
    ma, mb = ~np.isnan(a), ~np.isnan(b)
    a0, b0 = np.where(ma, a, 0.0), np.where(mb, b, 0.0)
    sq = (a0 * a0) @ mb.T + ma @ (b0 * b0).T - 2 * a0 @ b0.T
    common = ma.astype(float) @ mb.T.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.sqrt(np.maximum(sq, 0) * a.shape[1] / common)
    d[common == 0] = np.nan
    return d


def knn_fill(x: np.ndarray, groups: list[list[int]], n_neighbors: int, chunk: int = 1024) -> np.ndarray:
    """KNNImputer(n_neighbors, uniform weights) on `x` (NaN = missing), fitted and applied to `x` itself.

    Each missing cell takes the mean of its column over the `n_neighbors` nearest rows (nan-Euclidean
    distance over all columns) that observe it; with no such row at a finite distance, the column mean.
    `groups` lists columns that are missing together (one-hot blocks), so they share donors. Equal to
    sklearn's `KNNImputer` (tested) up to ties in distance, and fast: the distances are matrix products.
    """
    out = x.copy()
    observed = ~np.isnan(x)
    means = np.nanmean(np.where(observed.any(axis=0), x, 0.0), axis=0)
    receivers = np.flatnonzero(~observed.all(axis=1))
    for start in range(0, len(receivers), chunk):
        rows = receivers[start : start + chunk]
        dist = _nan_euclidean(x[rows], x)
        for group in groups:
            need = ~observed[rows, group[0]]
            donors = np.flatnonzero(observed[:, group[0]])
            if not need.any() or len(donors) == 0:
                continue
            d = dist[need][:, donors]
            d[np.isnan(d)] = np.inf
            k = min(n_neighbors, len(donors))
            nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
            valid = np.isfinite(np.take_along_axis(d, nearest, axis=1))
            for col in group:
                values = x[donors[nearest], col]
                with np.errstate(invalid="ignore"):
                    filled = (values * valid).sum(axis=1) / valid.sum(axis=1)
                out[rows[need], col] = np.where(valid.any(axis=1), filled, means[col])
    return out


def knn_impute(df: pd.DataFrame, schema: Schema | None = None, *, n_neighbors: int = 5) -> pd.DataFrame:
    """KNNImputer (nan-Euclidean distance, uniform weights; `knn_fill`) on z-scored numeric and one-hot
    categorical columns; a missing category is the largest of its neighbours' averaged one-hot entries.

    Example:
        >>> df = pd.DataFrame({"x": [0.0, 0.1, 10.0, 10.1], "c": ["lo", None, "hi", "hi"]})
        >>> knn_impute(df, n_neighbors=1)["c"].tolist()
        ['lo', 'lo', 'hi', 'hi']
    """
    frame = _Frame.of(df, schema)
    n_numeric = frame.z.shape[1]
    groups = [[i] for i in range(n_numeric)]
    start = n_numeric
    for categories in frame.categories:
        groups.append(list(range(start, start + len(categories))))
        start += len(categories)
    x = knn_fill(frame.design(frame.z, frame.codes, one_hot=True), groups, n_neighbors)
    codes = frame.codes.copy()
    for j, group in enumerate(groups[n_numeric:]):
        missing = codes[:, j] < 0
        codes[missing, j] = x[missing][:, group].argmax(axis=1)
    return frame.to_frame(x[:, :n_numeric], codes)


BASELINES: dict[str, Callable[..., pd.DataFrame]] = {
    "mean": mean_mode_impute,
    "mice": mice_impute,
    "missforest": missforest_impute,
    "missforest-all-features": partial(missforest_impute, reference=False),
    "miceforest": miceforest_impute,
    "knn": knn_impute,
}
