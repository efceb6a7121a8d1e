"""The table page's plots: the missing cells, and observed against imputed values per column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

OBSERVED_COLOUR, IMPUTED_COLOUR, MISSING_COLOUR = "#1f5fbf", "#f08c00", "#d62839"
MAX_MATRIX_ROWS = 400
MAX_CATEGORIES = 20
MAX_PLOTTED_VALUES = 20_000  # per histogram: a random sample of a long column looks the same


def layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    """The shared look of this page's plots."""
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={
            "font": {"size": 10},
            "orientation": "h",
            "x": 1,
            "xanchor": "right",
            "y": 1.02,
            "yanchor": "bottom",
        },
    )
    return fig


def missingness_figure(names: list[str], missing: np.ndarray) -> go.Figure:
    """Which cells are missing, row by row (evenly spaced rows of a long table)."""
    rows = np.unique(np.linspace(0, len(missing) - 1, min(len(missing), MAX_MATRIX_ROWS)).astype(int))
    labels = [f"{name} ({share:.0%})" for name, share in zip(names, missing.mean(axis=0), strict=True)]
    shown = missing[rows]
    fig = go.Figure(
        go.Heatmap(
            z=shown.astype(np.int8),
            x=labels,
            y=rows,
            text=np.where(shown, "missing", "observed"),
            colorscale=[[0, "#e9edf3"], [1, MISSING_COLOUR]],
            zmin=0,
            zmax=1,
            showscale=False,
            xgap=2,
            hovertemplate="%{x}<br>row %{y}: %{text}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    title = "Missing cells (red)" + (
        f" ({len(rows)} of {len(missing):,} rows)" if len(rows) < len(missing) else ""
    )
    return layout(fig, title, "column (share missing)", "row", height=380)


def distribution_figure(run, column: str) -> go.Figure:
    """Observed against imputed values of one column of a finished run (the page's ``TableRun``):
    histograms, or shares of the top categories."""
    j = run.frame.columns.get_loc(column)
    values = run.frame[column]
    parts = {"observed": values[~run.missing[:, j]], "imputed": values[run.imputed[:, j]]}
    colours = {"observed": OBSERVED_COLOUR, "imputed": IMPUTED_COLOUR}
    fig = go.Figure()
    axis = "value"
    if pd.api.types.is_timedelta64_dtype(values):  # plotly cannot write durations: seconds
        parts, axis = {label: part.dt.total_seconds() for label, part in parts.items()}, "seconds"
    if run.kinds[column] == "numeric":
        for label, part in parts.items():
            fig.add_histogram(
                x=part.sample(min(len(part), MAX_PLOTTED_VALUES), random_state=0),
                name=f"{label} ({len(part):,})",
                histnorm="probability",
                bingroup=1,
                marker_color=colours[label],
                opacity=0.65,
            )
        fig.update_layout(barmode="overlay")
        return layout(fig, column, axis, "share of cells")
    shares = pd.DataFrame({label: part.value_counts(normalize=True) for label, part in parts.items()})
    shares = shares.fillna(0.0).sort_values(["observed", "imputed"], ascending=False).head(MAX_CATEGORIES)
    for label in parts:
        fig.add_bar(
            x=shares.index.astype(str),
            y=shares[label],
            name=f"{label} ({len(parts[label]):,})",
            marker_color=colours[label],
        )
    fig.update_layout(barmode="group")
    return layout(fig, column, "value", "share of cells")
