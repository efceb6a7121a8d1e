"""The family-generation benchmark: its families, its unconditional layouts, and a small end-to-end
run (a tiny random model: the structure, not the quality)."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import bench_family
from seqdiff.protein.io import read_sequences


def test_default_families_are_the_msas_with_at_least_100_sequences(shared):
    names = [msa.name.split(".")[0] for msa in bench_family.families(None)]
    assert names == "1bcf 1prw 1qjg 4jhw 4zyp 5ius 5tpn 5trv 5yui 6e6r 6exz 6vw1 7mrx".split()
    assert bench_family.families(["1YCR"])[0].name == "1ycr.a3m.gz"


def test_unconditional_jobs_take_family_lengths_the_model_can_hold():
    lengths = [30, 40, 50, 900]
    jobs = bench_family.unconditional_jobs("fam", lengths, n=50, max_len=512, seed=1)
    sizes = [len(j.template) for j in jobs]
    assert len(jobs) == 50 and set(sizes) == {30, 40, 50}  # 900 is over the model's maximum
    assert sizes == sorted(sizes) and all(set(j.template) == {"_"} for j in jobs)
    assert [j.template for j in jobs] == [
        j.template for j in bench_family.unconditional_jobs("fam", lengths, n=50, max_len=512, seed=1)
    ]


def test_small_run_of_both_systems(shared, tmp_path: Path, tiny_protein_model: Path, monkeypatch):
    out = tmp_path / "family.json"
    monkeypatch.setenv("SEQDIFF_CACHE", str(tmp_path / "cache"))  # a fresh adaptation, whatever ran before
    args = ["--out", str(out), "--work", str(tmp_path / "work"), "--families", "6e6r", "--designs", "4",
            "--steps", "5", "--adapt-steps", "3", "--checkpoint", str(tiny_protein_model), "--threads", "1"]  # fmt: skip
    bench_family.main(args)
    result = json.loads(out.read_text())
    default, family = result["rows"]
    assert (default["system"], family["system"]) == ("default", "family")
    designs = tmp_path / "work" / "designs"
    lengths = [len(r.sequence) for r in read_sequences(designs / "6e6r.default.fasta")]
    assert lengths == [len(r.sequence) for r in read_sequences(designs / "6e6r.family.fasta")]  # same layouts
    for r in (default, family):
        assert r["family"] == "6e6r" and r["homologs"] == 1000 and r["designs"] == 4
        assert 26 <= r["mean_length"] <= 135  # the homologs' length range
        for key in ("recognised", "diversity_identity", "nearest_identity_mean"):
            assert 0 <= r[key] <= 1
    assert family["adapt_seconds"] > 0 and family["adapt_reused"] is False and "adapt_seconds" not in default
    assert [s["families"] for s in result["summary"]] == [1, 1]
    text = out.with_suffix(".md").read_text()
    assert "| 6e6r | 1000 | family |" in text and "5 steps" in text

    def no_sampling(*args, **kwargs):
        raise AssertionError("--resume sampled again")

    monkeypatch.setattr(bench_family, "timed_design", no_sampling)
    bench_family.main([*args, "--resume"])
    assert json.loads(out.read_text())["rows"] == result["rows"]
