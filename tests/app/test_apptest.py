"""The app's pages run headless under Streamlit's AppTest, with a tiny untrained model."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from Bio.Data.IUPACData import protein_letters_1to3
from streamlit.testing.v1 import AppTest

from seqdiff.app_launch import APP_DIR
from seqdiff.core.bundle import load_bundle
from seqdiff.protein.alphabet import STANDARD_AA, TOKEN_ID

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
TIMEOUT = 120


def page(name: str) -> AppTest:
    """An AppTest on page ``name`` (e.g. "1_Protein_design"), run once."""
    at = AppTest.from_file(str(APP_DIR / "Home.py"), default_timeout=TIMEOUT).run()
    if name != "Home":
        at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def design_page(md4_model: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The design page with 3 designs of 4 steps from the tiny MD4 model."""
    monkeypatch.setenv("SEQDIFF_MODEL", str(md4_model))
    at = page("1_Protein_design")
    at.number_input(key="design_n").set_value(3)
    at.number_input(key="design_steps").set_value(4)
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def run_design(at: AppTest) -> list:
    """Click Design and return the designs kept in the session."""
    assert not errors(at), errors(at)
    at.button(key="design_run").click().run()
    assert not at.exception, at.exception
    assert not errors(at), errors(at)
    return at.session_state["design_results"].designs


def chart_spec(chart) -> dict:
    """The Plotly figure of an ``st.plotly_chart`` element."""
    return json.loads(chart.proto.spec)


def plotly_array(value: dict | list) -> np.ndarray:
    """An array of Plotly's JSON: a list, or a typed array (base64 bytes with dtype and shape)."""
    if isinstance(value, list):
        return np.asarray(value)
    shape = tuple(int(n) for n in value["shape"].split(","))
    return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)


def pdb_text(residues: str) -> str:
    """A minimal PDB file: chain A's SEQRES, and one CA atom per residue numbered from 1."""
    names = [protein_letters_1to3[aa].upper() for aa in residues]
    seqres = [
        f"SEQRES {row + 1:3d} A {len(names):4d}  {' '.join(names[start : start + 13])}"
        for row, start in enumerate(range(0, len(names), 13))
    ]
    atoms = [
        f"ATOM  {i:5d}  CA  {name} A{i:4d}    {1.5 * i:8.3f}{0.0:8.3f}{0.0:8.3f}{1.0:6.2f}{0.0:6.2f}{'':10s} C"
        for i, name in enumerate(names, start=1)
    ]
    return "\n".join([*seqres, *atoms, "END", ""])


def test_home_links_to_the_pages(md4_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQDIFF_MODEL", str(md4_model))
    at = page("Home")
    links = [link.proto.page for link in at.get("page_link")]
    assert links == ["Protein_design", "Table_imputation", "Model"]  # the pages' URL paths
    assert str(md4_model) in at.caption[0].value


def test_fixed_ranges_are_kept(design_page: AppTest) -> None:
    at = design_page
    at.text_area(key="design_sequence").set_value(SEQ).run()
    at.text_input(key="design_ranges").set_value("1-5,20-24").run()
    designs = run_design(at)
    fixed = np.zeros(len(SEQ), dtype=bool)
    fixed[0:5] = fixed[19:24] = True
    assert len(designs) == 3
    for d in designs:
        assert len(d.sequence) == len(SEQ)
        assert d.job.fixed.tolist() == fixed.tolist()
        assert [d.sequence[i] for i in np.flatnonzero(fixed)] == [SEQ[i] for i in np.flatnonzero(fixed)]
        assert set(d.sequence) <= set(STANDARD_AA)
    table = at.dataframe[0].value
    assert table["sequence"].tolist() == [d.sequence for d in designs]
    assert {"nelbo_per_residue", "mean_confidence", "recovery"} <= set(table.columns)
    fasta = at.session_state["design_results"].fasta.decode()
    assert fasta.count(">") == 3 and "fixed=1-5,20-24" in fasta
    alignment = at.get("html")[-1].proto.body
    assert all(d.sequence[:5] in alignment for d in designs)
    charts = {c["layout"]["title"]["text"]: c for c in map(chart_spec, at.get("plotly_chart"))}
    assert len(charts) == 4
    decided = plotly_array(charts["Unmasking order"]["data"][0]["z"])
    assert decided.shape == (4, len(SEQ)) and (decided[-1] == 1).all()
    assert (decided[:, fixed] == 1).all() and (decided[0, ~fixed] < 1).any()


def test_redesign_ranges_blank_only_those(design_page: AppTest) -> None:
    at = design_page
    at.text_area(key="design_sequence").set_value(SEQ).run()
    at.radio(key="design_meaning").set_value("redesigned").run()
    at.text_input(key="design_ranges").set_value("3-6").run()
    for d in run_design(at):
        assert d.sequence[:2] == SEQ[:2] and d.sequence[6:] == SEQ[6:]


def test_underscore_masks_are_designed(design_page: AppTest) -> None:
    at = design_page
    template = "MKT____LLVA_YIAK"
    at.text_area(key="design_sequence").set_value(template).run()
    at.radio(key="design_mode").set_value("mask").run()
    for d in run_design(at):
        assert "_" not in d.sequence
        assert all(a == b for a, b in zip(d.sequence, template, strict=True) if b != "_")


def test_clicked_residues_are_kept(design_page: AppTest) -> None:
    at = design_page
    at.text_area(key="design_sequence").set_value(SEQ).run()
    at.radio(key="design_mode").set_value("click").run()
    at.button_group[0].set_value([2, 3, 10]).run()
    for d in run_design(at):
        assert np.flatnonzero(d.job.fixed).tolist() == [1, 2, 9]
        assert d.sequence[1:3] == SEQ[1:3] and d.sequence[9] == SEQ[9]


def test_contig_scaffolds_a_pdb_motif(design_page: AppTest) -> None:
    at = design_page
    at.file_uploader(key="design_upload").upload("motif.pdb", pdb_text("MKTAYIAKQR").encode()).run()
    at.radio(key="design_mode").set_value("contig").run()
    at.text_input(key="design_contig").set_value("2-6,A3-7,2-6").run()
    at.text_input(key="design_length").set_value("12-14").run()
    for d in run_design(at):
        assert 12 <= len(d.sequence) <= 14
        ((name, start),) = d.job.motifs
        assert name == "A3-7" and d.sequence[start : start + 5] == "TAYIA"


def test_pdb_upload_designs_a_chain(design_page: AppTest) -> None:
    at = design_page
    at.file_uploader(key="design_upload").upload("small.pdb", pdb_text("MKTAYIAKQR").encode()).run()
    at.text_input(key="design_ranges").set_value("1-4").run()
    for d in run_design(at):
        assert d.name.startswith("small_A_design") and d.sequence[:4] == "MKTA"


@pytest.mark.parametrize(
    ("sequence", "ranges", "message"),
    [
        ("MKTJAYIAK", "1-3", "position 4: 'J' is not an amino acid"),
        (SEQ, "5-3", "reversed"),
        (SEQ, "30-40", "beyond the end of the sequence"),
    ],
)
def test_bad_input_is_an_error_not_a_crash(
    design_page: AppTest, sequence: str, ranges: str, message: str
) -> None:
    at = design_page
    at.text_input(key="design_ranges").set_value(ranges).run()
    at.text_area(key="design_sequence").set_value(sequence).run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value
    assert at.button(key="design_run").disabled


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("junk.fasta", b"\x89PNG\r\n\x1a\n\x00\x00\x00garbage", "junk.fasta: binary data"),
        ("junk.pdb", b"this is not a structure\n", "junk.pdb: no protein residues found"),
        ("notes.fasta", b"hello world\n", "notes.fasta: line 1: no '>' header"),
        ("big.fasta", b">x\n" + b"A" * (21 * 2**20), "big.fasta: 21.0 MB is over the upload limit of 20 MB"),
    ],
)
def test_bad_upload_is_an_error(design_page: AppTest, name: str, content: bytes, message: str) -> None:
    at = design_page
    at.file_uploader(key="design_upload").upload(name, content).run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value
    assert "seqdiff-app-" not in at.error[0].value


def test_missing_model_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEQDIFF_MODEL", str(tmp_path / "absent"))
    at = page("1_Protein_design")
    at.text_area(key="design_sequence").set_value(SEQ).run()
    at.text_input(key="design_ranges").set_value("1-5").run()
    at.button(key="design_run").click().run()
    assert not at.exception
    assert "not a seqdiff model" in at.error[0].value
    assert "design_results" not in at.session_state
    model_page = page("3_Model")
    assert not model_page.exception and "not a seqdiff model" in model_page.error[0].value


def test_model_page_md4(md4_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQDIFF_MODEL", str(md4_model))
    at = page("3_Model")
    assert "shared by all tokens" in at.info[0].value
    assert at.metric[0].value == "protein"
    assert not at.get("plotly_chart")
    assert "no training record" in " ".join(c.value for c in at.caption)


def test_model_page_genmd4(genmd4_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQDIFF_MODEL", str(genmd4_model))
    at = page("3_Model")
    (chart,) = at.get("plotly_chart")
    bars = chart_spec(chart)["data"][0]
    model, _, _ = load_bundle(genmd4_model)
    with torch.no_grad():
        rates = model.schedule.rates()
    expected = sorted(STANDARD_AA, key=lambda aa: -float(rates[TOKEN_ID[aa]]))
    assert bars["x"] == expected
    assert any("Tiny test model" in m.value for m in at.markdown)
    assert at.json[0].value and json.loads(at.json[0].value)["step"] == 7


def test_model_folder_in_the_sidebar(md4_model: Path, genmd4_model: Path, monkeypatch) -> None:
    monkeypatch.setenv("SEQDIFF_MODEL", str(md4_model))
    at = page("3_Model")
    at.sidebar.text_input(key="model_folder_input").set_value(str(genmd4_model)).run()
    assert at.get("plotly_chart")
    at.switch_page("pages/1_Protein_design.py").run()
    assert at.sidebar.text_input(key="model_folder_input").value == str(genmd4_model)
