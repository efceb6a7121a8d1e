"""The model: its card, its training record, and the unmasking order GenMD4 learned."""

from __future__ import annotations

from pathlib import Path

import common
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from seqdiff.core.bundle import ModelSpec
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.protein.alphabet import STANDARD_AA, TOKEN_ID, TOKENS
from seqdiff.tabular.imputer import MaskedDiffusionImputer

CARDS = ("README.md", "MODEL_CARD.md")
MAX_BARS = 40  # a table model has a token per category or bin of every column


def rates_figure(labels: list[str], rates: np.ndarray, what: str) -> go.Figure:
    """GenMD4's rate w per token (``labels``, named ``what`` on the axis): the MAX_BARS largest."""
    order = np.argsort(-rates, kind="stable")[:MAX_BARS]
    fig = go.Figure(
        go.Bar(
            x=[labels[i] for i in order],
            y=rates[order],
            marker_color="#1f5fbf",
            hovertemplate="%{x}: w = %{y:.3f}<extra></extra>",
        )
    )
    fig.add_hline(y=1, line_dash="dot", annotation_text="w = 1 (linear MD4)")
    fig.update_layout(
        title="Which tokens unmask first",
        xaxis_title=what,
        yaxis_title="rate w",
        height=360,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def token_rates(model: MaskedDiffusion, protein: bool) -> pd.DataFrame:
    """The learned rate of each token: the 20 amino acids of a protein model, else every token id."""
    rates = model.schedule.rates().detach().cpu().numpy()
    ids = [TOKEN_ID[aa] for aa in STANDARD_AA] if protein else list(range(len(rates)))
    return pd.DataFrame({"token": [TOKENS[i] if protein else str(i) for i in ids], "rate": rates[ids]})


def show_schedule(model: MaskedDiffusion, spec: ModelSpec, modality: str, folder: str) -> None:
    """The per-token rates of a GenMD4 model (per column value for a table model), or why an MD4 model
    has none."""
    st.subheader("Unmasking order")
    if not model.schedule.state_dependent:
        what = {"protein": "residue", "table": "value"}.get(modality, "token")
        st.info(
            f"MD4 ({spec.schedule} schedule): one masking schedule is shared by all tokens, so every "
            f"masked position is equally likely to be decided at each sampling step, whatever its {what}."
        )
        return
    what = {"protein": "amino acid", "table": "column value"}.get(modality, "token id")
    with common.user_errors(stop=False):
        if modality == "table":
            rates = MaskedDiffusionImputer.load(folder, device="cpu").learned_rates()
        else:
            rates = token_rates(model, modality == "protein")
        st.plotly_chart(
            rates_figure(rates["token"].tolist(), rates["rate"].to_numpy(), what), key="plot_rates"
        )
        st.caption(
            "GenMD4 learns a rate w per token: a token stays unmasked with probability 1 − t^w at time t. "
            "A larger w keeps it unmasked longer in the forward (noising) process, so the sampler tends "
            "to decide it earlier."
            + (f" The plot shows the highest {MAX_BARS} of {len(rates)}." if len(rates) > MAX_BARS else "")
        )
        if len(rates) > MAX_BARS:
            with st.expander(f"All {len(rates)} rates"):
                st.dataframe(rates.sort_values("rate", ascending=False, kind="stable"), hide_index=True)


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
show_schedule(model, spec, modality, folder)
show_card(Path(folder))
st.subheader("Training")
training = config.get("training")
if training:
    st.json(training, expanded=1)
else:
    st.caption("config.json has no training record.")
with st.expander("Model spec"):
    st.json(spec.to_dict())
