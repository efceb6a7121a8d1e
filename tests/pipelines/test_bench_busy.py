"""The shared-machine benchmark on a tiny table: both tools impute under both conditions, the spinners
run only inside their block, and the slowdowns are the ratios of the recorded times."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pipelines.bench_busy import busy_processes, main  # noqa: E402


def test_spinners_run_inside_the_block_only() -> None:
    with busy_processes(2, settle=0.1) as spinners:
        assert len(spinners) == 2 and all(p.poll() is None for p in spinners)
    assert all(p.poll() is not None for p in spinners)
    with pytest.raises(RuntimeError), busy_processes(1, settle=0.0) as spinners:
        raise RuntimeError("a failed run")
    assert spinners[0].poll() is not None


def test_both_tools_impute_quiet_and_busy(tmp_path: Path, shared: Path) -> None:
    out = tmp_path / "busy.json"
    result = main(
        ["--out", str(out), "--dataset", "magic", "--rows", "300", "--busy", "1", "--settle", "0"]
        + ["--max-steps", "20", "--max-iter", "1"]
    )
    assert json.loads(out.read_text()) == result
    for condition in ["quiet", "busy"]:
        for tool in ["seqdiff", "missforest"]:
            run = result["runs"][condition][tool]
            assert run["seconds"] > 0 and 0 < run["mae"] < 2 and 0.4 < run["accuracy"] <= 1
            assert run["n_numeric"] + run["n_categorical"] > 0.25 * 300 * 11
        seqdiff, forest = result["runs"][condition]["seqdiff"], result["runs"][condition]["missforest"]
        assert seqdiff["busy_cores"] >= 0 and 1 <= seqdiff["threads"] <= result["cores"]
        assert forest["n_jobs"] == result["cores"]
    assert result["runs"]["busy"]["seqdiff"]["busy_cores"] >= 0.5  # the spinner, seen as it runs
    for tool, slowdown in result["slowdown"].items():
        runs = result["runs"]
        assert slowdown == pytest.approx(runs["busy"][tool]["seconds"] / runs["quiet"][tool]["seconds"])
