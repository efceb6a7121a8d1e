"""The design page's family section and decoding choice under AppTest: homologs uploaded, the tiny
model adapted for 3 steps (then reused from the cache), designs scored against the family; bad
homolog files and a missing database as errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_apptest import chart_spec, errors, page, pdb_text, run_design

from seqdiff.protein.family import RECOGNISED_EVALUE
from seqdiff.protein.io import read_sequences

FIXED = "10-20"
FAMILY_COLUMNS = {"family_bits", "family_evalue", "scaffold_bits", "scaffold_evalue", "nearest_identity"}


@pytest.fixture
def family_page(md4_model: Path, monkeypatch: pytest.MonkeyPatch, family_homologs) -> AppTest:
    """The design page: 3 designs of 4 steps of the query with residues 10-20 kept, homologs chosen
    as an upload, 3 adaptation steps."""
    monkeypatch.setenv("SEQDIFF_MODEL", str(md4_model))
    at = page("1_Protein_design")
    at.number_input(key="design_n").set_value(3)
    at.number_input(key="design_steps").set_value(4)
    at.text_area(key="design_sequence").set_value(family_homologs[1]).run()
    at.text_input(key="design_ranges").set_value(FIXED).run()
    at.radio(key="family_source").set_value("file").run()
    at.number_input(key="family_steps").set_value(3).run()
    return at


def keys(at: AppTest) -> set[str]:
    """The keys of the sidebar's number inputs."""
    return {box.key for box in at.sidebar.number_input}


def captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_designs_come_from_the_adapted_model_with_family_scores(
    family_page: AppTest, family_homologs, tmp_path: Path
) -> None:
    at = family_page
    a3m, query = family_homologs
    assert at.button(key="design_run").disabled  # no homologs yet
    at.file_uploader(key="family_upload").upload(a3m.name, a3m.read_bytes()).run()
    designs = run_design(at)
    assert len(designs) == 3
    for d in designs:
        assert d.sequence[9:20] == query[9:20] and len(d.sequence) == len(query)
        assert FAMILY_COLUMNS <= d.scores.keys()
    table = at.dataframe[0].value
    assert FAMILY_COLUMNS <= set(table.columns)
    assert table["nearest_identity"].between(0, 1).all()
    assert "trained now and cached" in captions(at)
    at.run()  # a redraw shows the kept run: it neither adapts nor samples again
    assert "trained now and cached" in captions(at)
    assert at.session_state["design_results"].designs is designs
    fasta = tmp_path / "designs.fasta"
    fasta.write_bytes(at.session_state["design_results"].fasta)
    for record in read_sequences(fasta):
        fields = dict(part.split("=", 1) for part in record.description.split())
        assert fields["homologs"] == a3m.name and len(fields["adapted"]) == 16
        assert fields["fixed"] == FIXED and "family_bits" in fields

    charts = {c["layout"]["title"]["text"]: c for c in map(chart_spec, at.get("plotly_chart"))}
    family = charts["Family score"]
    whole = family["data"][0]
    assert np.allclose(whole["x"], table["nearest_identity"])
    # The dashed line sits where the profile's E-value crosses the recognition threshold: the query
    # scores above it and is recognised, a shuffled query below it and is not.
    line = family["layout"]["shapes"][0]["y0"]
    shuffled = "".join(random.Random(0).sample(query, len(query)))
    bits, evalues = at.session_state["design_results"].family.profile.search([query, shuffled])
    assert bits[0] > line and evalues[0] < RECOGNISED_EVALUE
    assert not bits[1] > line and not evalues[1] < RECOGNISED_EVALUE

    again = run_design(at)  # the same homologs and recipe: no second adaptation
    assert "reused from the cache" in captions(at)
    assert [d.sequence for d in again] == [d.sequence for d in designs]
    assert {d.params["profile_weight"] for d in again} == {"3"}

    # The profile weight reaches the sampler: without the profile, other designs from the same model.
    at.number_input(key="family_profile_weight").set_value(0.0).run()
    unguided = run_design(at)
    assert {d.params["profile_weight"] for d in unguided} == {"0"}
    assert [d.sequence for d in unguided] != [d.sequence for d in designs]
    assert "reused from the cache" in captions(at)


def contig_page(at: AppTest, chain: str, a3m: Path) -> AppTest:
    """``at`` scaffolding residues 10-20 of a PDB file whose chain A is ``chain``, homologs ``a3m``."""
    at.text_area(key="design_sequence").set_value("").run()
    at.file_uploader(key="design_upload").upload("motif.pdb", pdb_text(chain).encode()).run()
    at.radio(key="design_mode").set_value("contig").run()
    at.text_input(key="design_contig").set_value("5-8,A10-20,5-8").run()
    at.file_uploader(key="family_upload").upload(a3m.name, a3m.read_bytes()).run()
    return at


def test_a_contig_design_adapts_to_the_motif_chains_family(family_page: AppTest, family_homologs) -> None:
    a3m, query = family_homologs
    for d in run_design(contig_page(family_page, query, a3m)):
        ((name, start),) = d.job.motifs
        assert d.sequence[start : start + 11] == query[9:20]
        assert FAMILY_COLUMNS <= d.scores.keys() and d.params["homologs"] == a3m.name


def test_homologs_of_another_protein_than_the_motif_chain_are_an_error(
    family_page: AppTest, family_homologs
) -> None:
    a3m, _ = family_homologs
    at = contig_page(family_page, "MKTAYIAKQR" * 3, a3m)
    at.button(key="design_run").click().run()
    assert not at.exception
    assert len(errors(at)) == 1 and errors(at)[0].startswith(a3m.name), errors(at)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no sequences"),
        (b">a\nMKTAYIAKQR\n", "one sequence|at least 2"),
        (b">a\nMKTAYIAKQR\n>b\nMKT1YIAKQR\n", "not an amino acid"),
    ],
)
def test_a_bad_homolog_file_is_an_error(family_page: AppTest, content: bytes, message: str) -> None:
    at = family_page
    at.file_uploader(key="family_upload").upload("homologs.fasta", content).run()
    at.button(key="design_run").click().run()
    assert not at.exception
    assert len(errors(at)) == 1
    assert any(part in errors(at)[0] for part in message.split("|")), errors(at)
    assert errors(at)[0].startswith("homologs.fasta") and "seqdiff-app-" not in errors(at)[0]
    assert "design_results" not in at.session_state


def test_a_missing_database_is_an_error(family_page: AppTest, tmp_path: Path) -> None:
    at = family_page
    at.radio(key="family_source").set_value("database").run()
    assert at.button(key="design_run").disabled
    at.text_input(key="family_database").set_value(str(tmp_path / "absent.fasta")).run()
    at.button(key="design_run").click().run()
    assert not at.exception
    assert errors(at) == [f"{tmp_path / 'absent.fasta'}: database file not found"]


def test_decoding_choice_and_its_parameter_reach_the_designs(md4_model: Path, monkeypatch) -> None:
    monkeypatch.setenv("SEQDIFF_MODEL", str(md4_model))
    at = page("1_Protein_design")
    assert keys(at) == {"design_n", "design_steps", "design_seed"}  # ancestral decoding has no parameter
    at.sidebar.selectbox(key="design_decoding").set_value("remask").run()
    assert keys(at) == {"design_n", "design_steps", "design_seed", "design_remask_eta"}
    at.sidebar.number_input(key="design_remask_eta").set_value(0.1).run()
    at.number_input(key="design_steps").set_value(4)
    at.text_area(key="design_sequence").set_value("MKT____LLVA_YIAK").run()
    at.radio(key="design_mode").set_value("mask").run()
    run_design(at)
    fasta = at.session_state["design_results"].fasta.decode()
    assert "decoding=remask" in fasta and "remask_eta=0.1" in fasta and "order_noise" not in fasta
