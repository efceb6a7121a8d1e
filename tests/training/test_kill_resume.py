"""A training run killed with SIGKILL resumes from its last checkpoint and finishes."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seqdiff.core.bundle import load_bundle


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path: Path, shared: Path) -> None:
    cath = shared / "protein" / "general"
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "seqdiff.cli", "train", "--out", str(out)]
    for item in [
        f"data.train={cath / 'cath_v4_1_0_S40.valid.fasta'}",
        f"data.valid={cath / 'cath_v4_1_0_S40.test.fasta'}",
        "data.max_len=128", "data.max_tokens=1024",
        "model.dim=32", "model.n_layers=1", "model.n_heads=2",
        "trainer.max_steps=5000", "trainer.checkpoint_every_steps=2", "trainer.val_every_steps=1000",
        "trainer.log_every_steps=1", "trainer.progress_bar=false", "trainer.threads=1",
    ]:  # fmt: skip
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and not last.exists() and proc.poll() is None:
            time.sleep(0.05)
        assert last.exists(), "no checkpoint appeared"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not list(out.rglob("*.tmp")), "a temporary file was left behind"
    # The run may write more checkpoints between our poll and the kill; resume must start at the last one.
    killed_at = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert killed_at >= 2

    resumed = subprocess.run([*cmd, "--set", "trainer.max_steps=60"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # The killed run may not have flushed its log, so only the resumed run's log is read.
    resumed_log = max(
        out.glob("logs/version_*/metrics.csv"), key=lambda path: int(path.parent.name.split("_")[1])
    )
    with open(resumed_log) as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("train/nelbo")]
    assert steps[0] == killed_at, "the resumed run did not start at the last checkpoint"
    assert steps[-1] == 59
    model, _, extra = load_bundle(out / "model")
    assert extra["training"]["step"] == 60
