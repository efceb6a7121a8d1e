"""Benchmark missingness masks (MCAR / MAR / MNAR, DiffPuter protocol) and imputation metrics.

Masks and metrics cover the "imputable" columns: schema-numeric columns with a pandas numeric dtype and
schema-categorical columns. Passthrough and date/time columns are never masked or scored.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [0.5, 1.5, 2.5, 3.5], "c": ["a", "b", "a", "b"]})
    >>> mask = make_missing_mask(df, rate=0.5, mechanism="mcar", rng=0)
    >>> mask.shape, mask.dtype
    ((4, 2), dtype('bool'))
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import expit

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.schema import Schema, infer_schema

Mechanism = Literal["mcar", "mar", "mnar"]


def imputable_columns(df: pd.DataFrame, schema: Schema | None = None) -> tuple[list[str], list[str]]:
    """(numeric, categorical) column names that masks, metrics and the baselines work on.

    Example:
        >>> imputable_columns(pd.DataFrame({"x": [1.5, 2.5], "c": ["a", "b"]}))
        (['x'], ['c'])
    """
    schema = schema if schema is not None else infer_schema(df)
    schema.check(df)
    numeric = [c for c in schema.numeric if pd.api.types.is_numeric_dtype(df[c].dtype)]
    return numeric, schema.categorical


def _as_float(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _logistic_inputs(df: pd.DataFrame, numeric: list[str], columns: list[str]) -> np.ndarray:
    """Columns as z-scored floats (categories as their sorted index), missing cells at 0 (the mean)."""
    values = []
    for name in columns:
        if name in numeric:
            x = _as_float(df[name])
        else:
            codes = pd.factorize(df[name], sort=True)[0].astype(np.float64)
            x = np.where(codes < 0, np.nan, codes)
        std = np.nanstd(x)
        values.append(np.nan_to_num((x - np.nanmean(x)) / (std if std > 0 else 1.0)))
    return np.stack(values, axis=1)


def _logistic_mask(inputs: np.ndarray, n_targets: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Mask [n, n_targets]: cell (i, k) is missing with probability sigmoid(w_k . inputs_i + b_k).

    Weights are standard normal, rescaled so that w_k . inputs has unit variance; each intercept b_k is
    found by bisection so that the mean probability of column k is `rate` (as in DiffPuter / HyperImpute).
    """
    logits = inputs @ rng.standard_normal((inputs.shape[1], n_targets))
    std = logits.std(axis=0)
    logits /= np.where(std > 0, std, 1.0)
    low, high = np.full(n_targets, -50.0), np.full(n_targets, 50.0)
    for _ in range(60):
        middle = (low + high) / 2
        too_many = expit(logits + middle).mean(axis=0) > rate
        high = np.where(too_many, middle, high)
        low = np.where(too_many, low, middle)
    return rng.random(logits.shape) < expit(logits + (low + high) / 2)


def make_missing_mask(
    df: pd.DataFrame,
    rate: float = 0.3,
    mechanism: Mechanism = "mcar",
    rng: np.random.Generator | int | None = None,
    *,
    schema: Schema | None = None,
    obs_fraction: float | None = None,
) -> np.ndarray:
    """Boolean mask [rows, len(df.columns)], True = hide the cell, over the imputable columns.

    Rules (d = number of imputable columns, q = `obs_fraction`, by default DiffPuter's 0.3 when
    ``rate <= 0.3`` else 0.1; d_in = max(floor(q * d), 1) columns drawn at random):

    - ``"mcar"``: every cell independently with probability `rate`.
    - ``"mar"`` (DiffPuter / HyperImpute ``MAR_mask``): the d_in input columns stay fully observed; each
      other column is masked by the logistic model of `_logistic_mask` on the input columns with a
      per-column rate ``rate * d / (d - d_in)``, so that the overall expected rate is `rate` (DiffPuter
      writes this ``p / (1 - q)``, the same value when q * d is whole).
    - ``"mnar"`` (HyperImpute ``MNAR_mask_logistic`` with ``exclude_inputs=True``, DiffPuter's
      ``MNAR_logistic_T2``): the other columns are masked by the logistic model on the d_in input
      columns with rate `rate`, then the input columns themselves are masked MCAR with rate `rate`, so
      missingness depends on values that may be hidden.

    Logistic inputs are z-scored (categories as their sorted index, missing cells at the mean); the
    reference code uses raw values, which lets the widest-ranged column dominate. Cells already missing
    in `df` may also be selected; `metrics` skips them.

    Example:
        >>> df = pd.DataFrame({"a": np.arange(1000.0), "b": np.arange(1000.0) % 7, "c": np.ones(1000)})
        >>> m = make_missing_mask(df, rate=0.3, mechanism="mar", rng=0)
        >>> int(m.all(axis=0).sum()), int((~m).all(axis=0).sum())  # one column is kept observed
        (0, 1)
    """
    if not 0 < rate < 1:
        raise SeqdiffError(f"missing rate must be between 0 and 1, got {rate}")
    if mechanism not in ("mcar", "mar", "mnar"):
        raise SeqdiffError(f"unknown missingness mechanism {mechanism!r} (expected mcar, mar or mnar)")
    rng = np.random.default_rng(rng)
    numeric, categorical = imputable_columns(df, schema)
    columns = [c for c in df.columns if c in numeric or c in categorical]
    n, d = len(df), len(columns)
    if mechanism == "mcar":
        sub = rng.random((n, d)) < rate
    else:
        q = obs_fraction if obs_fraction is not None else (0.3 if rate <= 0.3 else 0.1)
        d_in = max(int(q * d), 1)
        if d_in >= d:
            raise SeqdiffError(f"{mechanism.upper()} masks need at least 2 imputable columns, got {d}")
        inputs = np.sort(rng.choice(d, d_in, replace=False))
        targets = np.setdiff1d(np.arange(d), inputs)
        target_rate = rate * d / len(targets) if mechanism == "mar" else rate
        if target_rate >= 1:
            raise SeqdiffError(f"MAR rate {rate} is too high for {len(targets)} maskable columns out of {d}")
        x = _logistic_inputs(df, numeric, [columns[i] for i in inputs])
        sub = np.zeros((n, d), bool)
        sub[:, targets] = _logistic_mask(x, len(targets), target_rate, rng)
        if mechanism == "mnar":
            sub[:, inputs] = rng.random((n, d_in)) < rate
    mask = np.zeros((n, len(df.columns)), bool)
    mask[:, [df.columns.get_loc(c) for c in columns]] = sub
    return mask


def _scored_cells(
    true_df: pd.DataFrame, imputed_df: pd.DataFrame, mask: np.ndarray, schema: Schema | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per imputable column, over its masked cells whose true value is known: the z-scored errors
    (numeric columns) and the hits (categorical columns); see `metrics`."""
    if mask.shape != true_df.shape or list(imputed_df.columns) != list(true_df.columns):
        raise SeqdiffError(
            "metrics: the true table, the imputed table and the mask must have the same columns"
        )
    numeric, categorical = imputable_columns(true_df, schema)
    errors, hits = {}, {}
    for name in numeric + categorical:
        j = true_df.columns.get_loc(name)
        scored = mask[:, j] & true_df[name].notna().to_numpy()
        if imputed_df[name][scored].isna().any():
            raise SeqdiffError(
                f"imputed table: column {name!r} still has missing cells among the masked ones"
            )
        if name in numeric:
            truth = _as_float(true_df[name])
            observed = truth[~mask[:, j] & ~np.isnan(truth)]
            std = observed.std() if len(observed) > 1 else 0.0
            predicted = _as_float(imputed_df[name])[scored]
            # Z-scoring both sides with the same mean cancels it: only the std matters.
            errors[name] = (predicted - truth[scored]) / (std if std > 0 else 1.0)
        else:
            hits[name] = imputed_df[name][scored].to_numpy(object) == true_df[name][scored].to_numpy(object)
    return errors, hits


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def metrics(
    true_df: pd.DataFrame, imputed_df: pd.DataFrame, mask: np.ndarray, schema: Schema | None = None
) -> dict[str, float]:
    """Imputation error over the masked cells whose true value is known.

    Numeric cells are z-scored with the mean / std of the column's unmasked true values (std 0 -> 1);
    ``mae`` and ``rmse`` pool all masked numeric cells, ``accuracy`` all masked categorical cells (NaN
    when there are none); ``n_numeric`` / ``n_categorical`` count the scored cells. A scored cell left
    missing in `imputed_df` is a SeqdiffError.

    Example:
        >>> t = pd.DataFrame({"x": [0.0, 2.0, 4.0], "c": ["a", "b", "b"]})
        >>> i = pd.DataFrame({"x": [0.0, 2.0, 3.0], "c": ["a", "b", "a"]})
        >>> m = np.array([[False, False], [False, False], [True, True]])
        >>> metrics(t, i, m)
        {'mae': 1.0, 'rmse': 1.0, 'accuracy': 0.0, 'n_numeric': 1, 'n_categorical': 1}
    """
    errors, hits = _scored_cells(true_df, imputed_df, mask, schema)
    errors_all = np.concatenate(list(errors.values())) if errors else np.array([])
    hits_all = np.concatenate(list(hits.values())) if hits else np.array([], bool)
    return {
        "mae": _mean(np.abs(errors_all)),
        "rmse": float(np.sqrt(_mean(errors_all**2))),
        "accuracy": _mean(hits_all),
        "n_numeric": len(errors_all),
        "n_categorical": len(hits_all),
    }


def column_metrics(
    true_df: pd.DataFrame, imputed_df: pd.DataFrame, mask: np.ndarray, schema: Schema | None = None
) -> dict[str, dict[str, float | int | str]]:
    """`metrics` column by column: for each imputable column with scored cells, its kind, its MAE
    (numeric, z-scored as in `metrics`) or accuracy (categorical), and ``n`` scored cells.

    Example:
        >>> t = pd.DataFrame({"x": [0.0, 2.0, 4.0], "c": ["a", "b", "b"]})
        >>> i = pd.DataFrame({"x": [0.0, 2.0, 3.0], "c": ["a", "b", "a"]})
        >>> m = np.array([[False, False], [False, True], [True, True]])
        >>> column_metrics(t, i, m)
        {'x': {'kind': 'numeric', 'mae': 1.0, 'n': 1}, 'c': {'kind': 'categorical', 'accuracy': 0.5, 'n': 2}}
    """
    errors, hits = _scored_cells(true_df, imputed_df, mask, schema)
    scores: dict[str, dict[str, float | int | str]] = {}
    for name in true_df.columns:
        if len(errors.get(name, ())):
            scores[name] = {"kind": "numeric", "mae": _mean(np.abs(errors[name])), "n": len(errors[name])}
        elif len(hits.get(name, ())):
            scores[name] = {"kind": "categorical", "accuracy": _mean(hits[name]), "n": len(hits[name])}
    return scores


COVERAGE_LEVELS = (0.5, 0.8, 0.9)


def draw_calibration(
    true_df: pd.DataFrame, draws: list[pd.DataFrame], mask: np.ndarray, schema: Schema | None = None
) -> dict[str, float]:
    """How well K imputed tables (`draws`, multiple imputation) state their uncertainty, over the masked
    cells whose true value is known.

    Numeric cells: ``coverage_50`` .. ``coverage_90``, the share of true values inside the draws'
    central 50% / 80% / 90% range (inclusive; a calibrated imputer gets about 0.5 / 0.8 / 0.9), and
    ``width_80``, that range's mean width in the column's standard deviations (narrower is sharper).
    Categorical cells: ``confidence``, the mean share of draws that agree with the cell's most frequent
    draw, and ``vote_accuracy``, how often that draw is right (calibrated: the two are equal).

    Example:
        >>> t = pd.DataFrame({"x": [0.0, 2.0, 4.0, 6.0], "c": ["a", "b", "b", "a"]})
        >>> m = np.array([[False, False], [False, False], [True, True], [True, True]])
        >>> d = [t.assign(x=[0.0, 2.0, 4.0 + s, 9.0], c=["a", "b", "b", "b"]) for s in (-1, 0, 1)]
        >>> r = draw_calibration(t, d, m)
        >>> r["coverage_80"], r["confidence"], r["vote_accuracy"]
        (0.5, 1.0, 0.5)
    """
    numeric, categorical = imputable_columns(true_df, schema)
    covered: dict[float, list[np.ndarray]] = {level: [] for level in COVERAGE_LEVELS}
    widths, agreement, right = [], [], []
    for name in numeric + categorical:
        j = true_df.columns.get_loc(name)
        scored = mask[:, j] & true_df[name].notna().to_numpy()
        if name in numeric:
            truth = _as_float(true_df[name])
            observed = truth[~mask[:, j] & ~np.isnan(truth)]
            std = observed.std() if len(observed) > 1 and observed.std() > 0 else 1.0
            values = np.stack([_as_float(d[name])[scored] for d in draws])
            for level in COVERAGE_LEVELS:
                low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
                covered[level].append((low <= truth[scored]) & (truth[scored] <= high))
                if level == 0.8:
                    widths.append((high - low) / std)
        else:
            values = np.stack([d[name][scored].to_numpy(object) for d in draws])
            for cell, true in zip(values.T, true_df[name][scored].to_numpy(object), strict=True):
                labels, counts = np.unique(cell.astype(str), return_counts=True)
                agreement.append(counts.max() / len(cell))
                right.append(labels[counts.argmax()] == str(true))
    result = {
        f"coverage_{round(level * 100)}": _mean(np.concatenate(cells)) if cells else float("nan")
        for level, cells in covered.items()
    }
    result["width_80"] = _mean(np.concatenate(widths)) if widths else float("nan")
    result["confidence"] = _mean(np.array(agreement))
    result["vote_accuracy"] = _mean(np.array(right, bool))
    return result


DEPENDENT = 0.3  # pairs whose true values' residual correlation is at least this large (in size) are scored
MIN_PAIR_ROWS = 50  # rows with both cells of a pair masked, at least, for the pair to be scored


def _residual_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of deviations that are already centred on the imputer's mean (not re-centred)."""
    scale = np.sqrt((a**2).sum() * (b**2).sum())
    return float((a * b).sum() / scale) if scale > 0 else 0.0


def pair_dependence(
    true_df: pd.DataFrame, draws: list[pd.DataFrame], mask: np.ndarray, schema: Schema | None = None
) -> dict[str, float]:
    """Whether K imputed tables keep the dependence between cells missing from the same row: for each
    pair of numeric columns, over the rows where both cells are masked, the correlation of the draws'
    deviations from their cell's mean of draws, against that of the true values' deviations from the
    same mean. Draws from the joint conditional distribution give both the same correlation; cells
    drawn independently of each other give the draws none.

    Returns ``pair_corr_draws`` and ``pair_corr_truth``: the two correlations averaged over the pairs
    where the true one is at least DEPENDENT in size (the draws' taken with the true one's sign), and
    ``dependent_pairs``, how many pairs that is (pairs need MIN_PAIR_ROWS rows).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=500)  # two equal columns; an imputer that knows only that they are equal
        >>> t, m = pd.DataFrame({"a": x, "b": x}), np.ones((500, 2), bool)
        >>> joint = [pd.DataFrame({"a": z, "b": z}) for z in rng.normal(size=(10, 500))]
        >>> apart = [pd.DataFrame({"a": z[0], "b": z[1]}) for z in rng.normal(size=(10, 2, 500))]
        >>> kept, lost = (pair_dependence(t, d, m)["pair_corr_draws"] for d in (joint, apart))
        >>> round(kept, 2), abs(lost) < 0.1
        (1.0, True)
        >>> round(pair_dependence(t, apart, m)["pair_corr_truth"], 1)
        0.9
    """
    numeric, _ = imputable_columns(true_df, schema)
    truth = {c: _as_float(true_df[c]) for c in numeric}
    drawn = {c: np.stack([_as_float(d[c]) for d in draws]) for c in numeric}  # [K, rows]
    scored = {c: mask[:, true_df.columns.get_loc(c)] & ~np.isnan(truth[c]) for c in numeric}
    draws_corr, truth_corr = [], []
    for i, a in enumerate(numeric):
        for b in numeric[i + 1 :]:
            both = scored[a] & scored[b]
            if both.sum() < MIN_PAIR_ROWS:
                continue
            va, vb = drawn[a][:, both], drawn[b][:, both]
            center_a, center_b = va.mean(axis=0), vb.mean(axis=0)
            true_r = _residual_correlation(truth[a][both] - center_a, truth[b][both] - center_b)
            if abs(true_r) >= DEPENDENT:
                draws_corr.append(np.sign(true_r) * _residual_correlation(va - center_a, vb - center_b))
                truth_corr.append(abs(true_r))
    return {
        "pair_corr_draws": _mean(np.array(draws_corr)),
        "pair_corr_truth": _mean(np.array(truth_corr)),
        "dependent_pairs": len(truth_corr),
    }
