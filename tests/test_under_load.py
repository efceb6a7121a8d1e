"""On a busy machine: with two CPU-bound processes beside them, a Ray design run and a killed-then-resumed
training run still finish, with the results they give on a quiet machine (issue #29: the Ray design
actors sat pending for 900 s beside two busy processes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqdiff.cli import main
from tests.training.test_kill_resume import test_sigkill_then_resume as sigkill_then_resume

MASKED_FASTA = Path(__file__).resolve().parent.parent / "data" / "examples" / "masked.fasta"

# A CPU-bound process that ends by itself after the suite's per-test timeout (900 s), whatever happens.
HOG = "import time\nend = time.monotonic() + 900\nwhile time.monotonic() < end:\n    pass\n"


@pytest.fixture
def two_busy_processes() -> Iterator[None]:
    """Two CPU-bound processes for the length of a test: killed at its end (they stop by themselves
    after 900 s if this process dies first)."""
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(2)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


@pytest.mark.slow
def test_ray_design_under_load(two_busy_processes, tiny_protein_model: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    assert not ray.is_initialized(), "the engine must start its own local cluster here, as the CLI does"
    common = [str(MASKED_FASTA), "-n", "3", "--steps", "8", "--seed", "5", "--batch-size", "4"]
    common += ["--checkpoint", str(tiny_protein_model), "--device", "cpu"]
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.fasta"
        assert main(["design", *common, "-o", str(out), "--engine", engine]) == 0
        outs[engine] = out.read_text()
    assert outs["ray"] == outs["local"] and outs["ray"].count(">") == 6
    assert not ray.is_initialized()  # the engine shut its cluster down


@pytest.mark.slow
def test_sigkill_then_resume_under_load(two_busy_processes, tmp_path: Path, shared: Path) -> None:
    sigkill_then_resume(tmp_path, shared)
