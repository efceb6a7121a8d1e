"""bench_point_estimate on a small real table: every estimate scored on one fitted model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pipelines.bench_point_estimate import main  # noqa: E402


def test_estimates_with_and_without_sampling_steps(tmp_path: Path, shared: Path) -> None:
    out = tmp_path / "point.json"
    main(
        ["--out", str(out), "--datasets", "california", "--rows", "200", "--max-steps", "5"]
        + ["--draws", "2", "--sampling-steps", "1"]
    )
    rows = json.loads(out.read_text())["rows"]
    estimates = [(r["point"], r["draws"], r["sampling_steps"], r["numeric_point"]) for r in rows]
    assert estimates == [
        ("predictive", 1, None, "median"),
        ("predictive", 1, None, "mean"),
        ("draws", 2, None, "median"),
        ("draws", 2, None, "mean"),
        ("draws", 2, 1, "median"),
        ("draws", 2, 1, "mean"),
    ]
    for r in rows:
        assert 0 < r["mae"] < 2 and 0 <= r["accuracy"] <= 1 and r["rows"] == 200
    # One step decides every missing cell of a row at once: other draws than one step per cell.
    assert rows[2]["mae"] != rows[4]["mae"]
    table = out.with_suffix(".md").read_text()
    assert "| california | 2 draws, --sampling-steps 1, median |" in table
