"""bench_draws on a small real table: seqdiff's and miceforest's draws scored for calibration."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pipelines.bench_draws import SCORES, main  # noqa: E402


def test_both_methods_are_scored(tmp_path: Path, shared: Path) -> None:
    pytest.importorskip("miceforest")
    out = tmp_path / "draws.json"
    main(["--out", str(out), "--datasets", "adult", "--rows", "200", "--max-steps", "5", "--draws", "3"])
    rows = json.loads(out.read_text())["rows"]
    assert [(r["dataset"], r["method"]) for r in rows] == [("adult", "seqdiff"), ("adult", "miceforest")]
    for r in rows:
        assert 0 <= r["coverage_50"] <= r["coverage_80"] <= r["coverage_90"] <= 1
        assert r["width_80"] > 0 and 1 / 3 <= r["confidence"] <= 1 and 0 <= r["vote_accuracy"] <= 1
        assert set(SCORES) <= set(r)
        assert r["dependent_pairs"] >= 0
    table = out.with_suffix(".md").read_text()
    assert (
        "| | calibrated | 0.250 / 0.400 / 0.450 | | equal | equal | |" in table
        and "| adult | miceforest |" in table
    )
