"""The design page's plots: confidence, logo, unmasking order, pairwise identity, family scores."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from seqdiff.protein.design import Design
from seqdiff.protein.family import RECOGNISED_EVALUE

# WebLogo's "chemistry" colours: polar, neutral, basic, acidic, hydrophobic.
AA_COLOURS = {
    **dict.fromkeys("GSTYC", "#109648"),
    **dict.fromkeys("NQ", "#7b2cbf"),
    **dict.fromkeys("KRH", "#1f5fbf"),
    **dict.fromkeys("DE", "#d62839"),
    **dict.fromkeys("AVLIPWFM", "#333333"),
}


def codes(seq: str) -> np.ndarray:
    """The sequence's letters as bytes (for vectorised comparisons)."""
    return np.frombuffer(seq.encode(), dtype=np.uint8)


def stack(arrays: list[np.ndarray], fill: object) -> np.ndarray:
    """Arrays of different lengths as the rows of one array, padded with ``fill``."""
    out = np.full((len(arrays), max(map(len, arrays))), fill, dtype=arrays[0].dtype)
    for row, array in enumerate(arrays):
        out[row, : len(array)] = array
    return out


def layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    """The shared look of the result plots."""
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        height=340,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"font": {"size": 10}},
    )
    return fig


def confidence_figure(designs: list[Design]) -> go.Figure:
    """Per-position probability of the sampled residue; positions fixed in every design shaded."""
    fixed = stack([d.job.fixed for d in designs], False).all(axis=0)
    fig = go.Figure()
    fig.add_bar(
        x=np.flatnonzero(fixed) + 1,
        y=np.ones(int(fixed.sum())),
        width=1,
        marker={"color": "rgba(255, 170, 40, 0.3)", "line": {"width": 0}},
        name="fixed",
        hoverinfo="skip",
    )
    for d in designs:
        fig.add_scatter(x=np.arange(1, len(d.sequence) + 1), y=d.confidence, mode="lines", name=d.name)
    fig.update_yaxes(range=[0, 1])
    return layout(fig, "Confidence (shaded: fixed)", "position", "p(sampled residue)")


def unmasking_figure(designs: list[Design], steps: int) -> go.Figure:
    """Share of designs in which each position is decided after each sampler step (fixed: from the start)."""
    # Row 0 counts the given (fixed) positions, whose step is -1; row s + 1 those decided at step s.
    decided = stack([d.unmask_step + 1 for d in designs], steps + 1)
    present = stack([np.ones(len(d.sequence), dtype=bool) for d in designs], False)
    counts = np.zeros((steps + 1, decided.shape[1]))
    rows, cols = np.nonzero(present)
    np.add.at(counts, (decided[rows, cols], cols), 1)
    share = counts.cumsum(axis=0)[1:] / present.sum(axis=0)
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=np.arange(1, share.shape[1] + 1),
            y=np.arange(steps),
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": "decided"},
            hovertemplate="position %{x}<br>after step %{y}: %{z:.0%} of designs decided<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return layout(fig, "Unmasking order", "position", "sampler step")


def logo_figure(designs: list[Design]) -> go.Figure:
    """Residue frequencies per position across the designs, as stacked bars."""
    letters = stack([codes(d.sequence) for d in designs], 0)
    present = np.maximum((letters != 0).sum(axis=0), 1)
    positions = np.arange(1, letters.shape[1] + 1)
    fig = go.Figure()
    for aa in sorted(set("".join(d.sequence for d in designs))):
        fig.add_bar(
            x=positions,
            y=(letters == ord(aa)).sum(axis=0) / present,
            name=aa,
            text=aa,
            textposition="inside",
            insidetextanchor="middle",
            marker={"color": AA_COLOURS.get(aa, "#999999"), "line": {"color": "white", "width": 0.5}},
            hovertemplate=f"position %{{x}}<br>{aa}: %{{y:.0%}}<extra></extra>",
        )
    fig.update_layout(
        barmode="stack", bargap=0.05, uniformtext={"minsize": 8, "mode": "hide"}, showlegend=False
    )
    return layout(fig, "Sequence logo", "position", "frequency")


def identity_figure(designs: list[Design]) -> go.Figure:
    """Pairwise identity of the designs over the positions designed in both."""
    letters = stack([codes(d.sequence) for d in designs], 0)
    designed = stack([~d.job.fixed for d in designs], False)
    both = designed[:, None, :] & designed[None, :, :]
    same = (letters[:, None, :] == letters[None, :, :]) & both
    counts = both.sum(axis=-1)
    identity = np.where(counts > 0, same.sum(axis=-1) / np.maximum(counts, 1), np.nan)
    names = [d.name for d in designs]
    fig = go.Figure(
        go.Heatmap(
            z=identity,
            x=names,
            y=names,
            colorscale="Viridis",
            zmin=0,
            zmax=1,
            texttemplate="%{z:.2f}" if len(designs) <= 12 else None,
            hovertemplate="%{x}<br>%{y}<br>identity %{z:.2f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return layout(fig, "Pairwise identity (designed positions)", "", "")


def family_figure(designs: list[Design], recognised_bits: float) -> go.Figure:
    """Each design's family and scaffold bit scores against its identity to the nearest homolog; the
    dashed line is the bit score above which the profile recognises a sequence as a family member."""
    identity = [d.scores["nearest_identity"] for d in designs]
    names = [d.name for d in designs]
    fig = go.Figure()
    for field, label, symbol in (
        ("family_bits", "whole design", "circle"),
        ("scaffold_bits", "designed positions only", "diamond"),
    ):
        fig.add_scatter(
            x=identity,
            y=[d.scores[field] for d in designs],
            mode="markers",
            name=label,
            text=names,
            marker={"symbol": symbol, "size": 9},
            hovertemplate="%{text}<br>identity %{x:.2f}<br>%{y:.1f} bits<extra>" + label + "</extra>",
        )
    fig.add_hline(
        y=recognised_bits,
        line={"dash": "dash", "color": "#888888"},
        annotation_text=f"recognised (E < {RECOGNISED_EVALUE:g})",
        annotation_position="top left",
    )
    fig.update_xaxes(range=[0, 1.02])
    return layout(fig, "Family score", "identity to the nearest homolog", "bit score (family profile HMM)")
