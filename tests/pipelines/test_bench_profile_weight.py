"""The profile-weight sweep: halves of the MSA, one row per setting, and a small end-to-end run
(a tiny random model: the structure, not the quality)."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import bench_motif, bench_profile_weight
from seqdiff.protein.homologs import read_homologs


def test_halves_share_the_target_and_split_the_rest(shared):
    problem = next(q for q in bench_motif.problems() if q.name == "6E6R_short")
    homologs = read_homologs(bench_motif.msa_of(problem))
    even, odd = homologs.halves()  # the guiding and the refereeing half of the sweep
    assert even.ids[0] == odd.ids[0] == homologs.ids[0]
    assert len(even) + len(odd) == len(homologs) + 1
    assert not set(even.ids[1:]) & set(odd.ids[1:])
    assert len(even.aligned) == len(even) and len(odd.aligned) == len(odd)


def test_small_sweep(shared, tmp_path: Path, tiny_protein_model: Path, private_cache: Path):
    out = tmp_path / "weights.json"
    args = ["--out", str(out), "--problems", "6E6R_short", "--weights", "0", "8", "--decodings", "ancestral",
            "confidence", "--designs", "4", "--steps", "5", "--adapt-steps", "3",
            "--checkpoint", str(tiny_protein_model), "--threads", "1"]  # fmt: skip
    bench_profile_weight.main(args)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["weight"], r["decoding"]) for r in rows] == [
        (0.0, "ancestral"), (0.0, "confidence"), (8.0, "ancestral"), (8.0, "confidence")
    ]  # fmt: skip
    for r in rows:
        for key in ("scaffold_recognised_held_out", "scaffold_recognised_guiding", "diversity_identity"):
            assert 0 <= r[key] <= 1
    # A heavy profile pulls even a random model's scaffolds towards the family.
    unguided, guided = rows[0]["scaffold_bits_held_out"], rows[2]["scaffold_bits_held_out"]
    assert guided > unguided + 5
    text = out.with_suffix(".md").read_text()
    assert "| 6E6R_short | 8 | 1 | confidence |" in text and "Means over the problems" in text
