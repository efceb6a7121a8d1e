"""The motif-scaffolding benchmark's family test (HMMER) and a small end-to-end run."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest

from pipelines import bench_motif
from seqdiff.protein.design import DesignJob
from seqdiff.protein.io import ProteinRecord, read_sequences, write_fasta

needs_hmmer = pytest.mark.skipif(
    shutil.which("hmmsearch") is None, reason="HMMER is not installed (make system-deps)"
)


def test_match_columns_keep_the_query_length(shared):
    rows = bench_motif.match_columns(shared / "protein/family/evodiff_scaffold_msas/1prw.a3m.gz")
    assert len(rows) == 1119 and {len(r) for r in rows} == {147}
    assert all(not any(c.islower() for c in r) for r in rows)


def test_scaffold_only_masks_exactly_the_fixed_residues():
    job = DesignJob("x", 0, "__MKT__")
    assert bench_motif.scaffold_only(job, "AAMKTCC") == "AAXXXCC"


@needs_hmmer
def test_family_hmm_recognises_the_native_and_not_shuffles(shared, tmp_path: Path):
    hmm = bench_motif.build_hmm(
        shared / "protein/family/evodiff_scaffold_msas/1prw.a3m.gz", tmp_path / "1prw.hmm"
    )
    native = read_sequences(shared / "protein/motif_scaffolding/fasta/1prw.fasta")[0].sequence
    rng = random.Random(0)
    shuffles = ["".join(rng.sample(native, len(native))) for _ in range(5)]
    fasta = tmp_path / "q.fasta"
    write_fasta(
        [ProteinRecord("native", "", native)]
        + [ProteinRecord(f"s{i}", "", s) for i, s in enumerate(shuffles)],
        fasta,
    )
    evalues = bench_motif.family_evalues(hmm, fasta)
    assert evalues["native"] < 1e-20
    assert all(evalues.get(f"s{i}", 1.0) > bench_motif.FAMILY_EVALUE for i in range(5))


@needs_hmmer
def test_member_controls_recognise_members_and_measure_their_diversity(shared, tmp_path: Path, monkeypatch):
    msas = tmp_path / "msas"
    msas.mkdir()
    (msas / "1prw.a3m.gz").symlink_to(shared / "protein/family/evodiff_scaffold_msas/1prw.a3m.gz")
    monkeypatch.setattr(bench_motif, "MSAS", msas)
    context = {"hmms": {}, "msa_sequences": {}}
    controls = bench_motif.member_controls(tmp_path, context, n=20, seed=0)
    assert list(controls) == ["1prw"]
    assert controls["1prw"]["recognised"] >= 0.6  # 0.75: some members are short fragments
    # Homologs, not copies: aligned identity above chance (~0.06), far from identical.
    assert 0.08 < controls["1prw"]["diversity_identity"] < 0.6


def test_aligned_identity_counts_only_columns_both_rows_cover():
    assert bench_motif.aligned_identity(["AC-DE", "ACKDF"], min_overlap=2) == 0.75
    assert math.isnan(bench_motif.aligned_identity(["AC---", "---DE"], min_overlap=1))  # nothing shared


@needs_hmmer
@pytest.mark.slow
def test_small_run_keeps_every_motif(shared, tmp_path: Path):
    out = tmp_path / "motif.json"
    bench_motif.main(
        ["--out", str(out), "--work", str(tmp_path / "work"), "--problems", "5TPN",
         "--designs", "6", "--steps", "8", "--finetune-steps", "3", "--seed", "1", "--controls", "0",
         "--temperature", "0.5"]
    )  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert {r["system"] for r in rows} == {"default", "finetuned", "background"}
    assert {r["system"]: r.get("temperature") for r in rows} == {
        "default": 0.5,
        "finetuned": 0.5,
        "background": None,  # drawn from frequencies: no sampler
    }
    for r in rows:
        assert r["motif_kept"] == 1.0 and r["length_in_range"] == 1.0
        assert 0 < r["diversity_identity"] < 1 and 0 < r["novelty_identity_mean"] < 1
        assert (
            0 <= r["family_fraction"] <= 1
            and 0 <= r["family_scaffold_fraction"] <= r["family_fraction"] + 1e-9
        )
    assert (tmp_path / "work" / "finetune-5tpn" / "model").is_dir()
    text = out.with_suffix(".md").read_text()
    assert "| 5TPN | finetuned |" in text and "temperature 0.5" in text
