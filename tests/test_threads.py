"""--threads: every command that computes takes it, it reaches torch, and the default follows the free cores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqdiff.cli import main
from seqdiff.cli.main import build_parser
from seqdiff.threads import busy_cores, default_threads, usable_cores

ROOT = Path(__file__).resolve().parents[1]
FASTA = ROOT / "data" / "examples" / "masked.fasta"

COMMANDS = {
    "design": ["design", "in.fasta"],
    "sample protein": ["sample", "protein"],
    "impute": ["impute", "in.parquet", "-o", "out.parquet"],
    "sample table": ["sample", "table", "--checkpoint", "m", "--rows", "5", "-o", "s.parquet"],
    "score": ["score", "in.fasta"],
    "eval": ["eval", "in.fasta"],
    "adapt": ["adapt", "h.a3m", "-o", "out"],
    "train": ["train", "--config", "c.yaml"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_computing_command_takes_threads(command: str) -> None:
    parser = build_parser()
    assert parser.parse_args(COMMANDS[command]).threads is None
    assert parser.parse_args([*COMMANDS[command], "--threads", "3"]).threads == 3


def test_default_threads_are_the_free_cores() -> None:
    assert default_threads(cores=8, busy=0.0) == 8
    assert default_threads(cores=8, busy=0.3) == 8  # an idle process or two: still every core
    assert default_threads(cores=8, busy=2.6) == 5
    assert default_threads(cores=2, busy=1.0) == 1
    assert default_threads(cores=2, busy=7.0) == 1  # a busy machine: one thread, never zero
    assert 1 <= default_threads() <= usable_cores()


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="per-core times: Linux")
def test_busy_cores_sees_a_process_spinning_on_our_cores() -> None:
    """A spinner pinned to this process's first core counts as (nearly) one busy core, whatever else
    runs; `busy_cores` measures while this process sleeps, so it does not count itself."""
    core = min(os.sched_getaffinity(0))
    spin = f"import os; os.sched_setaffinity(0, {{{core}}}); print(flush=True)\nwhile True: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE)
    try:
        spinner.stdout.readline()  # pinned and spinning
        assert busy_cores(0.5) >= 0.7
    finally:
        spinner.kill()
        spinner.wait()
    assert 0 <= busy_cores(0.05) <= usable_cores()


def _threads_seen_by_eval(monkeypatch: pytest.MonkeyPatch, model: Path, *extra: str) -> int:
    """Run `seqdiff eval` with the model evaluation replaced by a probe of torch's thread count."""
    import seqdiff.protein.model as protein_model

    seen = []

    def probe(*args, **kwargs) -> dict:
        seen.append(torch.get_num_threads())
        return {}

    monkeypatch.setattr(protein_model, "evaluate_file", probe)
    assert main(["eval", str(FASTA), "--checkpoint", str(model), "--device", "cpu", *extra]) == 0
    return seen[0]


def test_threads_reach_torch_and_come_back(
    tiny_protein_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    before = torch.get_num_threads()
    assert _threads_seen_by_eval(monkeypatch, tiny_protein_model, "--threads", "2") == 2
    assert torch.get_num_threads() == before  # an in-process run leaves its caller's setting alone
    # Without --threads: the free cores, as default_threads counts them.
    monkeypatch.setattr("seqdiff.threads.default_threads", lambda: 3)
    assert _threads_seen_by_eval(monkeypatch, tiny_protein_model) == 3
    assert torch.get_num_threads() == before


def test_threads_below_one_is_one_line(capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(FASTA), "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["seqdiff: error: --threads 0: must be at least 1"]


def test_a_terminal_is_told_when_other_work_takes_cores(
    tiny_protein_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr("seqdiff.threads.default_threads", lambda: 1)
    monkeypatch.setattr("seqdiff.threads.usable_cores", lambda: 4)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert _threads_seen_by_eval(monkeypatch, tiny_protein_model) == 1
    line = "seqdiff: other work keeps 3 of 4 cores busy: 1 thread(s) (--threads N to choose)"
    assert line in capsys.readouterr().err.splitlines()
    _threads_seen_by_eval(monkeypatch, tiny_protein_model, "--threads", "1")  # chosen: nothing to say
    assert "cores busy" not in capsys.readouterr().err
