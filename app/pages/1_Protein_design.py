"""Protein design: keep some residues of a protein and let the model design the rest."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, fields
from itertools import groupby
from pathlib import Path

import common
import numpy as np
import pandas as pd
import streamlit as st
from design_plots import (
    codes,
    confidence_figure,
    family_figure,
    identity_figure,
    logo_figure,
    unmasking_figure,
)
from family_section import adapt_to_family, family_note, family_widgets, recognised_bits
from streamlit.runtime.uploaded_file_manager import UploadedFile

from seqdiff.core.sampler_settings import SamplerSettings
from seqdiff.protein.contig import load_motif_source
from seqdiff.protein.design import (
    Design,
    DesignJob,
    design,
    plan_from_contig,
    plan_from_records,
    write_per_position,
)
from seqdiff.protein.family_design import FAMILY_FIELDS, Family, motif_queries, score_designs
from seqdiff.protein.io import ProteinRecord, read_sequences, write_fasta
from seqdiff.protein.positions import parse_length_range

MODES = {
    "ranges": "Type ranges",
    "click": "Click residues",
    "mask": "`_` in the sequence",
    "contig": "Motif scaffolding (contig)",
}
UPLOAD_TYPES = ["fasta", "fa", "faa", "fas", "a3m", "txt", "pdb", "ent", "gz"]
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
    family: Family | None


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
    settings = {
        "steps": int(steps),
        "grid": grid,
        "temperature": float(temperature),
        "top_p": float(top_p),
        "seed": int(seed),
    }
    declared = {f.name: f for f in fields(SamplerSettings)}
    rule = declared["decoding"].metadata
    settings["decoding"] = side.selectbox(
        "Decoding", rule["choices"], key="design_decoding", help=rule["help"].capitalize() + "."
    )
    # Each decoding's own parameters (order noise, remask eta), as the engine declares them.
    for name, setting in declared.items():
        if setting.metadata["only"] == settings["decoding"]:
            settings[name] = float(
                side.number_input(
                    name.replace("_", " ").capitalize(),
                    min_value=0.0,
                    value=setting.default,
                    step=0.01,
                    format="%.3f",
                    key=f"design_{name}",
                    help=setting.metadata["help"].capitalize() + ".",
                )
            )
    return int(n), settings


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


def family_queries(
    source: tuple[str, bytes], mode: str, choice: dict, job: DesignJob, reference: str | None
) -> list[ProteinRecord]:
    """The proteins whose homologs are wanted: the input sequence, or the chains of a contig's motifs."""
    if mode != "contig":
        return [ProteinRecord(job.source, "", reference)]
    with common.as_file(*source) as path:
        return motif_queries(choice["contig"], path)


def run_designs(
    jobs: list[DesignJob], reference: str | None, folder: str, settings: dict, family: Family | None
) -> DesignRun:
    """Sample the designs with a progress bar (from the family's adapted model, steered by its profile
    and scored against it, when there is one), and prepare the downloads."""
    bar = st.progress(0.0, text="Sampling…")
    sampler = str(family.model.path) if family else folder
    model, _ = common.load_model("protein", sampler)

    def report(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Sampling: step {done} of {total}")

    checkpoint = None if common.is_default_model(folder) else folder
    designs = design(
        jobs,
        model=model,
        checkpoint=sampler if family else checkpoint,
        progress=report,
        prior=family.guide if family else None,
        **settings,
    )
    if family is not None:
        bar.progress(1.0, text="Scoring the designs against the family…")
        designs = list(score_designs(designs, family))
    bar.empty()
    fasta = common.written_bytes(lambda p: write_fasta([d.to_record() for d in designs], p), "designs.fasta")
    table = common.written_bytes(lambda p: write_per_position(designs, p), "per_position.parquet")
    return DesignRun(designs, reference, settings["steps"], fasta, table, family)


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
        row.update({name: d.scores[name] for name in FAMILY_FIELDS if name in d.scores})
        row["sequence"] = d.sequence
        rows.append(row)
    return pd.DataFrame(rows)


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
    if run.family is not None:
        left, right = st.columns(2)
        left.plotly_chart(family_figure(designs, recognised_bits(run.family)), key="plot_family")
        right.caption(family_note(run.family))
        right.caption(
            "Family bits: the whole design against the homologs' profile HMM; scaffold bits: the "
            "designed positions alone, so that a copied motif cannot carry the score. Identity: to "
            "the closest homolog, over the design's length."
        )
    # Recognised designs have E-values like 1e-20, which four decimals would show as 0.
    evalues = {
        name: st.column_config.NumberColumn(format="scientific") for name in FAMILY_FIELDS if "evalue" in name
    }
    st.dataframe(scores_table(run), hide_index=True, column_config=evalues, key="scores")
    stem = designs[0].job.source
    common.download_buttons(
        [
            common.Download(
                "Download FASTA", run.fasta, f"{stem}_designs.fasta", "text/x-fasta", "download_fasta"
            ),
            common.Download(
                "Download per-position Parquet",
                run.per_position,
                f"{stem}_per_position.parquet",
                common.PARQUET_MIME,
                "download_parquet",
            ),
        ]
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
family_choice = family_widgets()
ready = bool(jobs) and (family_choice is None or family_choice.ready)
if st.button("Design", type="primary", key="design_run", disabled=not ready):
    with common.user_errors(stop=False):
        family = None
        if family_choice is not None:
            queries = family_queries(source, mode, choice, jobs[0], reference)
            family = adapt_to_family(family_choice, queries, folder)
        st.session_state.design_results = run_designs(jobs, reference, folder, settings, family)
if "design_results" in st.session_state:
    show_results(st.session_state.design_results)
