"""Protein design: keep some residues of a protein and let the model design the rest."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import common
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from seqdiff.protein.contig import load_motif_source
from seqdiff.protein.design import (
    Design,
    DesignJob,
    design,
    plan_from_contig,
    plan_from_records,
    write_per_position,
)
from seqdiff.protein.io import ProteinRecord, read_sequences, write_fasta
from seqdiff.protein.positions import parse_length_range

MODES = {
    "ranges": "Type ranges",
    "click": "Click residues",
    "mask": "`_` in the sequence",
    "contig": "Motif scaffolding (contig)",
}
UPLOAD_TYPES = ["fasta", "fa", "faa", "fas", "a3m", "txt", "pdb", "ent", "gz"]
# WebLogo's "chemistry" colours: polar, neutral, basic, acidic, hydrophobic.
AA_COLOURS = {
    **dict.fromkeys("GSTYC", "#109648"),
    **dict.fromkeys("NQ", "#7b2cbf"),
    **dict.fromkeys("KRH", "#1f5fbf"),
    **dict.fromkeys("DE", "#d62839"),
    **dict.fromkeys("AVLIPWFM", "#333333"),
}
STYLE = """<style>
.seqdiff-aln {font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px;
  line-height: 1.55; white-space: pre; overflow-x: auto; padding: 0.5rem 0;}
.seqdiff-aln .fx {background: #ffd58a; color: #000; font-weight: 700;}
.seqdiff-aln .same {color: #a0a0a0;}
.seqdiff-aln .lb, .seqdiff-aln .rl {color: #6b6b6b;}
</style>"""


@dataclass
class DesignRun:
    """A finished run, kept in the session so that redraws and downloads do not resample."""

    designs: list[Design]
    reference: str | None
    steps: int
    fasta: bytes
    per_position: bytes


def sampling_settings() -> tuple[int, dict]:
    """The sidebar: how many designs, and the keyword arguments of ``design``."""
    side = st.sidebar
    side.header("Sampling")
    n = side.number_input("Designs", 1, 64, 4, key="design_n")
    steps = side.number_input(
        "Steps", 1, 1000, 100, key="design_steps", help="Sampler steps (time grid points)."
    )
    grid = side.selectbox("Time grid", ["cosine", "uniform"], key="design_grid")
    temperature = side.slider("Temperature", 0.05, 2.0, 1.0, 0.05, key="design_temperature")
    top_p = side.slider("Top-p", 0.05, 1.0, 1.0, 0.05, key="design_top_p")
    seed = side.number_input("Seed", 0, 2**31 - 1, 0, key="design_seed")
    return int(n), {
        "steps": int(steps),
        "grid": grid,
        "temperature": float(temperature),
        "top_p": float(top_p),
        "seed": int(seed),
    }


def input_file(text: str, upload: UploadedFile | None) -> tuple[str, bytes] | None:
    """The input as (file name, bytes): the upload, else the pasted text as FASTA."""
    if upload is not None:
        return upload.name, upload.getvalue()
    if not text.strip():
        return None
    body = text if text.lstrip().startswith(">") else f">input\n{text}"
    return "pasted.fasta", body.encode()


def read_records(path: Path) -> list[ProteinRecord]:
    """The sequences of an input file: its FASTA/A3M records, or one per chain of a PDB file."""
    if not path.name.lower().removesuffix(".gz").endswith((".pdb", ".ent")):
        return read_sequences(path)
    stem = path.name.split(".")[0]
    return [
        ProteinRecord(
            f"{stem}_{chain}".rstrip(), f"chain {chain}", "".join(residue.aa for residue in residues)
        )
        for chain, residues in load_motif_source(path).chains.items()
    ]


def selection_widgets(mode: str) -> dict[str, str]:
    """The widgets that say what to keep in ``mode`` (except the residue picker), and their values."""
    if mode == "ranges":
        return {
            "ranges": st.text_input("Residue ranges", key="design_ranges", placeholder="10-25,40-45"),
            "meaning": st.radio(
                "These residues are", ["kept", "redesigned"], key="design_meaning", horizontal=True
            ),
        }
    if mode != "contig":
        return {}
    choice = {
        "contig": st.text_input("Contig", key="design_contig", placeholder="5-15,A16-35,10-25"),
        "length": st.text_input("Total length (optional)", key="design_length", placeholder="40-60"),
        "numbering": st.radio(
            "Motif numbering",
            ["pdb", "sequential"],
            key="design_numbering",
            horizontal=True,
            help="pdb: residue numbers as in the PDB file; sequential: positions in the chain's SEQRES.",
        ),
    }
    st.caption(
        "Motifs like `A16-35` are copied from the uploaded PDB (or FASTA: chains A, B, … in file "
        "order); lengths like `10-25` are designed. Each design draws its own lengths."
    )
    return choice


def plan(
    path: Path, mode: str, choice: dict[str, str], n: int, seed: int
) -> tuple[list[DesignJob], str | None]:
    """The jobs for the input file and the selection; also the input sequence (None for a contig).

    No jobs means the user has not said yet what to design.
    """
    if mode == "contig":
        if not choice["contig"].strip():
            st.info("Type a contig to scaffold the motif.")
            return [], None
        length = parse_length_range(choice["length"]) if choice["length"].strip() else None
        name = path.name.split(".")[0]
        jobs = plan_from_contig(
            choice["contig"], path, length, n=n, seed=seed, numbering=choice["numbering"], source_name=name
        )
        return jobs, None
    records = read_records(path)
    record = (
        records[0]
        if len(records) == 1
        else st.selectbox("Record", records, format_func=lambda r: f"{r.id} ({len(r.sequence)} aa)")
    )
    seq = record.sequence
    fix = redesign = None
    if mode == "ranges":
        if not choice["ranges"].strip():
            st.info(f"Type 1-based ranges (the sequence has {len(seq)} residues).")
            return [], seq
        if choice["meaning"] == "kept":
            fix = choice["ranges"]
        else:
            redesign = choice["ranges"]
    elif mode == "click":
        picked = st.pills(
            "Residues to keep (click to toggle)",
            list(range(1, len(seq) + 1)),
            selection_mode="multi",
            format_func=lambda i: f"{seq[i - 1]}{i}",
            # A new sequence gets a fresh picker instead of the old one's positions.
            key=f"design_picked_{hashlib.sha1(seq.encode()).hexdigest()[:12]}",
        )
        if not picked:
            st.info("Click the residues to keep; the others are designed.")
            return [], seq
        fix = ",".join(map(str, sorted(picked)))
    elif "_" not in seq:
        st.info("Mark the positions to design with `_` in the sequence.")
        return [], seq
    return plan_from_records([record], fix, redesign, n=n), seq


def run_designs(jobs: list[DesignJob], reference: str | None, folder: str, settings: dict) -> DesignRun:
    """Sample the designs with a progress bar, and prepare the downloads."""
    bar = st.progress(0.0, text="Sampling…")
    model, _ = common.load_model("protein", folder)

    def report(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Sampling: step {done} of {total}")

    checkpoint = None if common.is_default_model(folder) else folder
    designs = design(jobs, model=model, checkpoint=checkpoint, progress=report, **settings)
    bar.empty()
    fasta = common.written_bytes(lambda p: write_fasta([d.to_record() for d in designs], p), "designs.fasta")
    table = common.written_bytes(lambda p: write_per_position(designs, p), "per_position.parquet")
    return DesignRun(designs, reference, settings["steps"], fasta, table)


def codes(seq: str) -> np.ndarray:
    """The sequence's letters as bytes (for vectorised comparisons)."""
    return np.frombuffer(seq.encode(), dtype=np.uint8)


def stack(arrays: list[np.ndarray], fill: object) -> np.ndarray:
    """Arrays of different lengths as the rows of one array, padded with ``fill``."""
    out = np.full((len(arrays), max(map(len, arrays))), fill, dtype=arrays[0].dtype)
    for row, array in enumerate(arrays):
        out[row, : len(array)] = array
    return out


def ruler(length: int) -> str:
    """Position numbers every 10 residues, each ending above its residue."""
    marks = [" "] * length
    for pos in range(10, length + 1, 10):
        marks[pos - len(str(pos)) : pos] = str(pos)
    return "".join(marks)


def alignment_html(rows: list[tuple[str, str, np.ndarray]], reference: str | None) -> str:
    """Sequences one under the other: fixed residues highlighted, designed ones equal to the input grey."""
    width = max(len(label) for label, _, _ in rows)
    lines = [f'<span class="rl">{" " * (width + 2)}{ruler(max(len(seq) for _, seq, _ in rows))}</span>']
    for label, seq, fixed in rows:
        kinds = [
            "fx" if fixed[i] else "same" if reference and i < len(reference) and aa == reference[i] else ""
            for i, aa in enumerate(seq)
        ]
        spans = "".join(
            f'<span class="{kind}">{html.escape("".join(aa for _, aa in run))}</span>'
            for kind, run in groupby(zip(kinds, seq, strict=True), key=lambda pair: pair[0])
        )
        lines.append(f'<span class="lb">{html.escape(label.ljust(width))}</span>  {spans}')
    return STYLE + '<div class="seqdiff-aln">' + "\n".join(lines) + "</div>"


def scores_table(run: DesignRun) -> pd.DataFrame:
    """One row per design: its scores, and how much of the input it recovers where it was designed."""
    rows = []
    for d in run.designs:
        designed = ~d.job.fixed
        row = {
            "design": d.name,
            "length": len(d.sequence),
            "designed": int(designed.sum()),
            "nelbo_per_residue": d.nelbo_per_residue,
            "mean_confidence": d.mean_confidence,
        }
        if run.reference is not None:
            known = designed & (codes(run.reference) != ord("_"))
            same = codes(d.sequence) == codes(run.reference)
            row["recovery"] = float(same[known].mean()) if known.any() else float("nan")
        row["sequence"] = d.sequence
        rows.append(row)
    return pd.DataFrame(rows)


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


def show_results(run: DesignRun) -> None:
    """The designs under the input, their plots and scores, and the downloads."""
    designs = run.designs
    st.subheader(f"{len(designs)} designs")
    rows = [(d.name, d.sequence, d.job.fixed) for d in designs]
    if run.reference is not None:
        rows.insert(0, ("input", run.reference, designs[0].job.fixed))
    st.html(alignment_html(rows, run.reference))
    st.caption(
        "Highlighted: fixed residues."
        + (" Grey: designed residues that equal the input." if run.reference is not None else "")
    )
    left, right = st.columns(2)
    left.plotly_chart(confidence_figure(designs), key="plot_confidence")
    right.plotly_chart(logo_figure(designs), key="plot_logo")
    left, right = st.columns(2)
    left.plotly_chart(unmasking_figure(designs, run.steps), key="plot_unmasking")
    right.plotly_chart(identity_figure(designs), key="plot_identity")
    st.dataframe(scores_table(run), hide_index=True, key="scores")
    stem = designs[0].job.source
    left, right = st.columns(2)
    left.download_button(
        "Download FASTA",
        run.fasta,
        file_name=f"{stem}_designs.fasta",
        mime="text/x-fasta",
        on_click="ignore",
        key="download_fasta",
    )
    right.download_button(
        "Download per-position Parquet",
        run.per_position,
        file_name=f"{stem}_per_position.parquet",
        mime="application/vnd.apache.parquet",
        on_click="ignore",
        key="download_parquet",
    )


st.set_page_config(page_title="Protein design · seqdiff", page_icon="🧬", layout="wide")
st.title("Protein design")
st.caption("Keep some residues of a protein and let the model design the rest. Positions are 1-based.")
folder = common.model_folder()
n, settings = sampling_settings()

text = st.text_area(
    "Sequence (plain or FASTA)",
    key="design_sequence",
    height=100,
    placeholder="MKTAYIAKQR…  (_ = design here)",
)
upload = st.file_uploader("…or upload FASTA / PDB", type=UPLOAD_TYPES, key="design_upload")
mode = st.radio("Choose what to keep", list(MODES), format_func=MODES.get, key="design_mode", horizontal=True)
choice = selection_widgets(mode)
source = input_file(text, upload)
jobs: list[DesignJob] = []
reference = None
if source is None:
    st.info("Paste a sequence or upload a file.")
else:
    if upload is not None and text.strip():
        st.caption(f"Using the uploaded file {upload.name} (clear it to use the pasted sequence).")
    with common.user_errors(stop=False), common.as_file(*source) as path:
        jobs, reference = plan(path, mode, choice, n, settings["seed"])
if jobs:
    preview = [("template", jobs[0].template, jobs[0].fixed)]
    if reference is not None:
        preview.insert(0, ("input", reference, jobs[0].fixed))
    st.html(alignment_html(preview, reference))
if st.button("Design", type="primary", key="design_run", disabled=not jobs):
    with common.user_errors(stop=False):
        st.session_state.design_results = run_designs(jobs, reference, folder, settings)
if "design_results" in st.session_state:
    show_results(st.session_state.design_results)
