"""bench_memory's fit-and-impute cases, tiny: each runs one ``seqdiff impute`` process under /usr/bin/time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipelines.bench_memory import main  # noqa: E402

pytestmark = pytest.mark.skipif(not Path("/usr/bin/time").exists(), reason="needs GNU time at /usr/bin/time")


@pytest.mark.parametrize(
    ("case", "shape", "label"),
    [
        (
            ["--case", "wide", "--columns", "6", "--samples", "2", "--sampling-steps", "3"],
            {"columns": 6, "sampling_steps": 3},
            "6 columns, --samples 2, --sampling-steps 3",
        ),
        (["--case", "vocab", "--categories", "40"], {"categories": 40}, "40 categories"),
    ],
)
def test_fit_and_impute_cases(tmp_path: Path, case: list[str], shape: dict, label: str) -> None:
    out = tmp_path / "memory.json"
    main(["--out", str(out), *case, "--rows", "160", "--fit-steps", "2"])
    (row,) = json.loads(out.read_text())["results"]
    assert {k: row[k] for k in shape} == shape and row["rows"] == 160
    assert row["samples"] == (2 if "--samples" in case else None)
    # Every hidden cell was filled (the script checks the output), in a process of some real size.
    assert row["missing_cells"] > 0 and row["max_rss_mib"] > 100 and row["seconds"] > 0
    assert f"| {case[1]} | 160 | {label} | {row['missing_cells']:,} |" in out.with_suffix(".md").read_text()
