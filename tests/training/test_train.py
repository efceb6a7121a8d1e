"""Training on real protein sequences: the loss goes down, export works, resume is exact."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from seqdiff.core.bundle import build_model, load_bundle
from seqdiff.errors import SeqdiffError
from seqdiff.protein.model import ProteinAdapter, evaluate_file
from seqdiff.training.config import TrainConfig
from seqdiff.training.module import DiffusionModule
from seqdiff.training.train import train, training_history

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
VALID = SHARED / "protein" / "general" / "cath_v4_1_0_S40.valid.fasta"
TEST = SHARED / "protein" / "general" / "cath_v4_1_0_S40.test.fasta"

pytestmark = pytest.mark.skipif(not VALID.exists(), reason="../shared/data is not available")


def tiny_config(out: Path, optimizer: str = "adamw", **trainer: object) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "modality": "protein",
            "data": {"train": str(VALID), "valid": str(TEST), "max_len": 128, "max_tokens": 2048},
            "model": {"dim": 32, "n_layers": 1, "n_heads": 2},
            "optim": {
                "lr": 3e-3,
                "warmup_steps": 5,
                "total_steps": 60,
                "ema_decay": 0.9,
                "optimizer": optimizer,
            },
            "trainer": {
                "max_steps": 60,
                "val_every_steps": 30,
                "checkpoint_every_steps": 30,
                "log_every_steps": 1,
                "progress_bar": False,
                "threads": 2,
                **trainer,
            },
            "out": str(out),
        }
    )


def train_losses(out: Path) -> dict[int, float]:
    """step -> train NELBO from the CSV logs of every run in ``out``."""
    losses = {}
    for path in sorted(out.glob("logs/version_*/metrics.csv")):
        with open(path) as f:
            for row in csv.DictReader(f):
                if row.get("train/nelbo"):
                    losses[int(row["step"])] = float(row["train/nelbo"])
    return losses


def test_short_training_lowers_validation_nelbo(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run")
    folder = train(cfg, ProteinAdapter())
    model, spec, extra = load_bundle(folder)
    assert extra["modality"] == "protein"
    val = []
    for path in (tmp_path / "run").glob("logs/version_*/metrics.csv"):
        with open(path) as f:
            val += [float(r["val/nelbo"]) for r in csv.DictReader(f) if r.get("val/nelbo")]
    assert len(val) >= 2
    assert extra["training"]["valid_nelbo_nats"] == pytest.approx(min(val), abs=1e-6)
    torch.manual_seed(0)
    untrained = evaluate_file(build_model(spec), TEST, passes=2, limit=200)
    trained = evaluate_file(model, TEST, passes=2, limit=200)
    # An untrained model is about uniform over 20 amino acids (ln 20 = 3.00 nats).
    assert untrained["nats_per_token"] > 2.98
    assert trained["nats_per_token"] < untrained["nats_per_token"] - 0.05, (untrained, trained)
    assert json.loads((folder / "config.json").read_text())["spec"]["mask_id"] == 32


def test_autoregressive_baseline_trains_with_the_same_loop(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run")
    cfg.model.kind = "autoregressive"
    model, spec, _ = load_bundle(train(cfg, ProteinAdapter()))
    assert spec.kind == "autoregressive"
    # An untrained model is about uniform over 20 amino acids (ln 20 = 3.00 nats).
    assert evaluate_file(model, TEST, passes=1, limit=200)["nats_per_token"] < 2.95


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_resume_gives_the_same_next_steps(tmp_path: Path, optimizer: str) -> None:
    """Also with Muon: its momentum and AdamW's moments both come back from the checkpoint."""
    every = {"checkpoint_every_steps": 3, "val_every_steps": 100, "optimizer": optimizer}
    straight = tmp_path / "straight"
    train(tiny_config(straight, max_steps=6, **every), ProteinAdapter())
    interrupted = tmp_path / "interrupted"
    train(tiny_config(interrupted, max_steps=3, **every), ProteinAdapter())
    assert (interrupted / "checkpoints" / "last.ckpt").exists()
    train(tiny_config(interrupted, max_steps=6, **every), ProteinAdapter())
    a, b = train_losses(straight), train_losses(interrupted)
    assert sorted(a) == sorted(b) == list(range(6))
    for step in range(6):
        assert b[step] == pytest.approx(a[step], rel=1e-5), (step, a, b)


def test_training_logs_the_same_rows_when_it_skips_the_steps_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Steps between two written logs skip self.log (costly next to a small model's step): the CSV keeps
    # every row it had when each step logged, with the same losses.
    config = {"max_steps": 23, "log_every_steps": 5, "val_every_steps": 100, "checkpoint_every_steps": 100}
    train(tiny_config(tmp_path / "shipped", **config), ProteinAdapter())
    monkeypatch.setattr(DiffusionModule, "logs_this_step", lambda self: True)
    train(tiny_config(tmp_path / "every", **config), ProteinAdapter())
    shipped, every = train_losses(tmp_path / "shipped"), train_losses(tmp_path / "every")
    assert sorted(shipped) == sorted(every) == [4, 9, 14, 19]
    assert shipped == pytest.approx(every, rel=1e-6)


def test_bad_config_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SeqdiffError, match="unknown keys in model"):
        TrainConfig.from_dict({"model": {"width": 3}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(SeqdiffError, match="must be a YAML mapping"):
        TrainConfig.load(bad)
    with pytest.raises(SeqdiffError, match="optim.lr must be a number, got 'fast'"):
        TrainConfig.load(None, ["optim.lr=fast"])
    with pytest.raises(SeqdiffError, match="trainer.max_steps must be a whole number"):
        TrainConfig.load(None, ["trainer.max_steps=1.5"])


def test_overrides_take_numbers_as_written():
    # YAML reads 5e-4 (no dot) as a string; the config converts it for numeric fields only.
    cfg = TrainConfig.load(
        None, ["optim.lr=5e-4", "trainer.max_steps=2e3", "trainer.devices=auto", "out=1e3"]
    )
    assert cfg.optim.lr == 5e-4 and cfg.trainer.max_steps == 2000 and isinstance(cfg.trainer.max_steps, int)
    assert cfg.trainer.devices == "auto" and cfg.out == "1e3"


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path: Path) -> None:
    """trainer.compile: torch.compile'd denoiser, same losses as eager (float32: bf16 rounding would
    depend on how the compiler fuses), same parameter names, and the training path really compiled."""
    settings = {"max_steps": 4, "checkpoint_every_steps": 100, "val_every_steps": 100, "precision": "32-true"}
    torch._dynamo.reset()
    eager = train(tiny_config(tmp_path / "eager", **settings), ProteinAdapter())
    compiled = train(tiny_config(tmp_path / "compiled", compile=True, **settings), ProteinAdapter())
    a, b = train_losses(tmp_path / "eager"), train_losses(tmp_path / "compiled")
    assert sorted(a) == sorted(b) == list(range(4))
    for step in range(4):
        assert b[step] == pytest.approx(a[step], rel=1e-4), (step, a, b)
    assert load_bundle(compiled)[0].state_dict().keys() == load_bundle(eager)[0].state_dict().keys()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0


def test_fine_tuning_starts_from_the_model_and_records_its_history(tmp_path: Path) -> None:
    first = train(tiny_config(tmp_path / "first", max_steps=20, val_every_steps=10), ProteinAdapter())
    start, _, first_extra = load_bundle(first)
    cfg = tiny_config(tmp_path / "second", max_steps=10, val_every_steps=10)
    cfg = TrainConfig.from_dict(
        {**cfg.to_dict(), "init": str(first), "optim": {"lr": 1e-12, "ema_decay": 0.9}}
    )
    model, _, extra = load_bundle(train(cfg, ProteinAdapter()))
    # A vanishing learning rate: the fine-tuned weights are the starting model's.
    for (name, a), b in zip(start.state_dict().items(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    runs = training_history(extra["training"])
    assert [r["step"] for r in runs] == [first_extra["training"]["step"], 10]
    assert runs[0]["init"] is None and runs[1]["init"] == str(first)


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[2] / "pipelines" / "configs").glob("*.yaml"))
)
def test_pipeline_configs_load(path: Path) -> None:
    cfg = TrainConfig.load(path)
    assert cfg.trainer.max_steps <= cfg.optim.total_steps
    # The shared data, or a shard folder a pipeline prepared from it (runs/ is never committed).
    assert cfg.data.train.startswith(("../shared/data/", "runs/"))
