"""The motif-scaffolding benchmark: its baseline, positive control, summary and goals, and a small
end-to-end run of the three systems (a tiny random model: the structure, not the quality)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pipelines import bench_motif
from pipelines.family_bench_tools import goal_table
from seqdiff.protein.design import DesignJob
from seqdiff.protein.family import FamilyProfile
from seqdiff.protein.homologs import read_homologs


def test_background_keeps_the_template_and_draws_from_the_frequencies():
    jobs = [DesignJob("x", i, "__MKT____") for i in range(20)]
    designs = bench_motif.background_designs(jobs, {"A": 0.5, "W": 0.5}, seed=0)
    assert all(d[2:5] == "MKT" and set(d[:2] + d[5:]) <= {"A", "W"} for d in designs)
    assert len(set(designs)) > 1
    assert designs == bench_motif.background_designs(jobs, {"A": 0.5, "W": 0.5}, seed=0)


def test_every_problem_has_an_msa_and_a_length_range(shared):
    problems = bench_motif.problems()
    assert len(problems) == 25 and problems[-1].name == "6VW1"
    assert all(bench_motif.msa_of(q).is_file() for q in problems)
    one = next(q for q in problems if q.name == "1PRW")
    assert bench_motif.contig_length_range(one) == (60, 105)  # 40 motif residues + 20-65 designed


def test_member_controls_recognise_natural_members(shared):
    problem = next(q for q in bench_motif.problems() if q.name == "1PRW")
    profile = FamilyProfile.from_homologs(read_homologs(bench_motif.msa_of(problem)))
    control = bench_motif.member_controls(problem, profile, n=100, seed=0)
    assert control["problem"] == "1PRW" and control["members"] == 100
    assert control["recognised"] >= 0.6  # 0.77: some members are short fragments
    # 40 of the 147 columns removed: less evidence, fewer recognised (0.61), but far from none.
    assert 0.3 < control["scaffold_recognised"] < control["recognised"]
    # Homologs, not copies: identity above chance (~0.06), far from identical.
    assert 0.08 < control["diversity_identity"] < 0.6


def test_member_controls_fall_back_to_whole_members_when_the_motif_is_not_in_the_first_row(shared):
    problem = next(q for q in bench_motif.problems() if q.name == "1PRW")
    profile = FamilyProfile.from_homologs(read_homologs(bench_motif.msa_of(problem)))
    moved = bench_motif.BenchmarkProblem(**{**vars(problem), "motif_segments": {"A1-5": "WWWWW"}})
    assert bench_motif.member_controls(moved, profile, n=5, seed=0)["scaffold_recognised"] is None


def row(problem: str, system: str, homologs: int, value: float, **extra) -> dict:
    return {
        "problem": problem,
        "system": system,
        "homologs": homologs,
        **dict.fromkeys(bench_motif.SUMMARY_KEYS, value),
        **extra,
    }


def test_summary_is_over_large_msas_and_problems_every_system_ran():
    timing = {"adapt_reused": False, "second_run_seconds": 2.0}
    rows = [
        row("A", "default", 500, 0.2),
        row("A", "family", 500, 0.8, adapt_seconds=100.0, **timing),
        row("B", "default", 500, 0.4),
        row("B", "family", 500, 0.6, adapt_seconds=5.0, adapt_reused=True, second_run_seconds=4.0),
        row("C", "default", 500, 0.9),  # the family system did not run on C: left out
        row("D", "default", 20, 0.0),  # an MSA under 100 sequences: left out
        row("D", "family", 20, 0.0, adapt_seconds=999.0, **timing),
    ]
    default, family = bench_motif.summarise(rows)
    assert default["problems"] == family["problems"] == 2
    assert default["recognised"] == pytest.approx(0.3) and family["recognised"] == pytest.approx(0.7)
    # Only fresh adaptations time the adaptation; the slowest second run counts.
    assert family["adapt_seconds"] == 100.0 and family["fresh_adaptations"] == 1
    assert family["second_run_seconds"] == 4.0


def test_goal_table_says_which_goals_are_met():
    lines = goal_table({"scaffold_recognised": 0.85, "diversity_identity": 0.6}, "family", "2 problems")
    assert "| scaffold-only recognition (fraction of designs) | >= 0.8 | 0.85 | yes |" in lines
    assert "| mean pairwise identity among designs | <= 0.5 | 0.6 | no |" in lines
    assert not any("adaptation" in line for line in lines)  # not measured: not shown


def test_small_run_of_the_three_systems(
    shared, tmp_path: Path, tiny_protein_model: Path, private_cache: Path
):
    out = tmp_path / "motif.json"
    args = ["--out", str(out), "--work", str(tmp_path / "work"), "--problems", "6E6R_short", "6E6R_med",
            "--designs", "4", "--steps", "5", "--adapt-steps", "3", "--controls", "5", "--temperature", "0.5",
            "--checkpoint", str(tiny_protein_model), "--threads", "1"]  # fmt: skip
    bench_motif.main(args)
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["problem"], r["system"]) for r in rows] == [
        (p, s) for p in ("6E6R_short", "6E6R_med") for s in ("default", "family", "background")
    ]
    for r in rows:
        assert r["designs"] == 4 and r["homologs"] == 1000
        assert r["motif_kept"] == 1.0 and r["length_in_range"] == 1.0
        for key in ("recognised", "scaffold_recognised", "diversity_identity", "nearest_identity_mean"):
            assert 0 <= r[key] <= 1
        assert 0 < r["cath_identity_mean"] < 1 and math.isfinite(r["scaffold_bits_median"])
    short, med = (r for r in rows if r["system"] == "family")
    # The two problems share an MSA: the second finds the first's adaptation in the cache.
    assert not short["adapt_reused"] and med["adapt_reused"] and short["adapted"] == med["adapted"]
    assert (private_cache / "adapted" / short["adapted"] / "config.json").is_file()
    assert short["second_run_reused"] and 0 < short["second_run_seconds"] < short["seconds"]
    assert [c["problem"] for c in result["member_controls"]] == ["6E6R_short", "6E6R_med"]
    assert result["settings"]["temperature"] == 0.5 and result["settings"]["decoding"] == "ancestral"
    assert {s["system"]: s["problems"] for s in result["summary"]} == {
        "default": 2,
        "family": 2,
        "background": 2,
    }
    text = out.with_suffix(".md").read_text()
    assert "| 6E6R_med | 1000 | family |" in text and "temperature 0.5" in text and "## Goals" in text
    assert len((tmp_path / "work" / "designs" / "6E6R_short.family.fasta").read_text().split(">")) == 5

    # --resume keeps every row and runs nothing again.
    bench_motif.main([*args, "--resume"])
    again = json.loads(out.read_text())
    assert again["rows"] == rows and again["member_controls"] == result["member_controls"]
    assert np.isclose(again["summary"][0]["recognised"], result["summary"][0]["recognised"])
