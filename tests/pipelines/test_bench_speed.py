"""The speed benchmark's sections on tiny settings: figures are consistent with what was run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pipelines.bench_speed import (  # noqa: E402
    attention_speed,
    identity_speed,
    loader_throughput,
    sampling_speed,
    softmax_speed,
    table_step_speed,
    table_training_speed,
    training_throughput,
)
from seqdiff.core.denoiser import FEW_KEYS, SHORT_ATTENTION  # noqa: E402
from seqdiff.protein.model import ProteinAdapter  # noqa: E402
from seqdiff.training.shards import TokenShard  # noqa: E402


def test_sampling_section_with_the_shipped_model(shared: Path) -> None:
    result = sampling_speed(None, None, length=24, n=2, steps=[48, 6])
    assert result["autoregressive_kv_cache"]["network_calls"] == 24
    # More steps than positions: some steps unmask nothing and the cache skips the network.
    assert (
        result["md4_steps48_cache_True"]["network_calls"]
        < 48
        == result["md4_steps48_cache_False"]["network_calls"]
    )
    assert result["md4_steps6_cache_True"]["network_calls"] == 6
    for key, value in result.items():
        if key.startswith("md4_"):
            assert value["speedup_vs_autoregressive"] == pytest.approx(
                result["autoregressive_kv_cache"]["seconds"] / value["seconds"]
            )
    assert "quality" not in result  # no trained autoregressive model given


def test_training_section(shared: Path) -> None:
    result = training_throughput(32, 1, 2, seconds=1.0, max_tokens=1024, bf16=True)
    assert (result["device"], result["precision"], result["max_tokens"]) == ("cpu", "bf16-mixed", 1024)
    assert result["steps"] >= 1
    # Bucketed batches hold at most max_tokens padded tokens, real ones among them.
    assert 0 < result["real_tokens_per_s"] <= result["padded_tokens_per_s"] <= 1024 * result["steps_per_s"]
    assert result["padding_waste_bucketed"] < result["padding_waste_random_batches"]


def test_identity_section(shared: Path) -> None:
    result = identity_speed(30, numpy_pairs=20)
    assert result["pairs"] == 30 * 29 // 2 and result["speedup"] > 0


def test_table_section(shared: Path) -> None:
    result = table_training_speed(steps=3, n_bins=8, batch_rows=64, precision="32-true")
    assert result["steps"] == 3 and result["n_bins"] == 8 and result["precision"] == "32-true"
    assert result["steps_per_s"] == pytest.approx(3 / result["fit_seconds"])
    assert result["table"] == "california.parquet, 20000 rows x 10 columns"


def test_table_steps_section(shared: Path) -> None:
    result = table_step_speed(steps=2, repeats=2, tables=["california", "shoppers"])
    assert [k for k in result if k not in ("steps", "repeats")] == ["california", "shoppers"]
    # The default batch: at least 4,096 cells (410 rows of california's 10 columns), at least 256 rows.
    for name, columns, default_batch in (("california", 10, 410), ("shoppers", 18, 256)):
        assert result[name]["columns"] == columns
        for label, batch in (("256 rows", 256), ("default", default_batch)):
            run = result[name][label]
            assert run["batch_rows"] == batch
            assert len(run["all_steps_per_s"]) == 2 and min(run["all_steps_per_s"]) > 0
            assert run["steps_per_s"] == pytest.approx(sum(run["all_steps_per_s"]) / 2)
            assert run["rows_per_s"] == pytest.approx(batch * run["steps_per_s"])


def test_loader_section_from_fasta_and_from_a_shard(shared: Path, tmp_path: Path) -> None:
    fasta = shared / "protein" / "general" / "cath_v4_1_0_S40.valid.fasta"
    result = loader_throughput(0.2, max_tokens=1024, source=fasta, max_len=128)
    assert result["threads"] == 1 and result["sequences"] == 1054 and result["batches"] >= 1
    # Real tokens are at most the padded ones, which fill at most max_tokens per batch.
    assert 0 < result["real_tokens_per_s"] <= result["padded_tokens_per_s"] <= 1024 * result["batches_per_s"]
    TokenShard.from_sequences(ProteinAdapter().sequences(str(fasta)), {"modality": "protein"}).save(tmp_path)
    from_shard = loader_throughput(0.2, max_tokens=1024, source=tmp_path, max_len=128)
    assert from_shard["sequences"] == 1054 and from_shard["source"] == str(tmp_path)


def test_attention_section() -> None:
    result = attention_speed((8, 32), tokens=64)
    kernels = [
        f"{shape}_{dtype}_{kernel}"
        for shape in ("table_4x16", "protein_8x32")
        for dtype in ("float32", "bfloat16")
        for kernel in ("flash", "math", "explicit")
    ]
    assert [k for k in result if k not in ("setting", "short_attention")] == kernels
    assert result["short_attention"] == SHORT_ATTENTION
    assert all(set(result[k]) == {"8", "32"} and min(result[k].values()) > 0 for k in kernels)


def test_softmax_section() -> None:
    result = softmax_speed((6, 16), tokens=96)
    assert result["few_keys"] == FEW_KEYS
    for kernel in ("written_out", "pytorch"):
        assert set(result[kernel]) == {"6", "16"} and min(result[kernel].values()) > 0
