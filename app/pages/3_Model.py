"""The model: its card, its training record, and the unmasking order GenMD4 learned."""

from __future__ import annotations

from pathlib import Path

import common
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from seqdiff.core.bundle import ModelSpec
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.protein.alphabet import STANDARD_AA, TOKEN_ID, TOKENS

CARDS = ("README.md", "MODEL_CARD.md")


def rates_figure(model: MaskedDiffusion, protein: bool) -> go.Figure:
    """GenMD4's rate w per token, largest first: the 20 amino acids of a protein model."""
    rates = model.schedule.rates().detach().cpu().numpy()
    ids = [TOKEN_ID[aa] for aa in STANDARD_AA] if protein else list(range(len(rates)))
    labels = [TOKENS[i] if protein else str(i) for i in ids]
    order = np.argsort(-rates[ids], kind="stable")
    fig = go.Figure(
        go.Bar(
            x=[labels[i] for i in order],
            y=rates[ids][order],
            marker_color="#1f5fbf",
            hovertemplate="%{x}: w = %{y:.3f}<extra></extra>",
        )
    )
    fig.add_hline(y=1, line_dash="dot", annotation_text="w = 1 (linear MD4)")
    fig.update_layout(
        title="Which tokens unmask first",
        xaxis_title="amino acid" if protein else "token id",
        yaxis_title="rate w",
        height=360,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def show_schedule(model: MaskedDiffusion, spec: ModelSpec, protein: bool) -> None:
    """The per-token rates of a GenMD4 model, or why an MD4 model has none."""
    st.subheader("Unmasking order")
    if not model.schedule.state_dependent:
        st.info(
            f"MD4 ({spec.schedule} schedule): one masking schedule is shared by all tokens, so every "
            "masked position is equally likely to be decided at each sampling step, whatever its residue."
        )
        return
    st.plotly_chart(rates_figure(model, protein), key="plot_rates")
    st.caption(
        "GenMD4 learns a rate w per token: a token stays unmasked with probability 1 − t^w at time t. "
        "A larger w keeps it unmasked longer in the forward (noising) process, so the sampler tends "
        "to decide it earlier."
    )


def show_card(folder: Path) -> None:
    """The model folder's README.md / MODEL_CARD.md."""
    st.subheader("Model card")
    cards = [folder / name for name in CARDS if (folder / name).is_file()]
    for card in cards:
        st.container(border=True).markdown(card.read_text(encoding="utf-8", errors="replace"))
    if not cards:
        st.caption(f"No {' or '.join(CARDS)} in {folder}.")


st.set_page_config(page_title="Model · seqdiff", page_icon="📊", layout="wide")
st.title("Model")
folder = common.model_folder()
with common.user_errors():
    model, spec, config = common.load_model("bundle", folder)
modality = config.get("modality", "unknown")
cfg = spec.denoiser
columns = st.columns(5)
columns[0].metric("Modality", modality)
columns[1].metric("Parameters", f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M")
columns[2].metric("Layers × width", f"{cfg.n_layers} × {cfg.dim}")
columns[3].metric("Max length", cfg.max_len)
columns[4].metric("Schedule", spec.schedule)
show_schedule(model, spec, modality == "protein")
show_card(Path(folder))
st.subheader("Training")
training = config.get("training")
if training:
    st.json(training, expanded=1)
else:
    st.caption("config.json has no training record.")
with st.expander("Model spec"):
    st.json(spec.to_dict())
