"""Data-parallel training: ranks see different batches and end with identical weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seqdiff.training.data import BucketBatchSampler

CATH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "protein" / "general"


def test_ranks_get_disjoint_equal_sized_shards() -> None:
    lengths = list(range(10, 400))
    shards = [list(BucketBatchSampler(lengths, 2048, seed=3, rank=r, num_replicas=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) > 0
    seen = [{int(i) for indices, _ in shard for i in indices} for shard in shards]
    assert not seen[0] & seen[1]


@pytest.mark.slow
def test_two_process_ddp_on_cpu_keeps_replicas_identical(tmp_path: Path) -> None:
    if not CATH.is_dir():
        pytest.skip("../shared/data is not available")
    overrides = {
        "data.train": CATH / "cath_v4_1_0_S40.valid.fasta",
        "data.valid": CATH / "cath_v4_1_0_S40.test.fasta",
        "data.max_len": 128,
        "data.max_tokens": 1024,
        "model.dim": 32,
        "model.n_layers": 1,
        "model.n_heads": 2,
        "trainer.max_steps": 6,
        "trainer.val_every_steps": 100,
        "trainer.strategy": "ddp",
        "trainer.devices": 2,
        "trainer.accelerator": "cpu",
        "trainer.threads": 1,
        "trainer.progress_bar": False,
    }
    cmd = [sys.executable, "-m", "seqdiff.cli", "train", "--out", str(tmp_path / "run")]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={value}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "run" / "replicas.json").read_text())
    assert report["world_size"] == 2
    first, second = report["checksums"]
    assert first == second
