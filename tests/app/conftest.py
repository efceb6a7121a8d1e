"""Tiny untrained protein models for the app tests: an MD4 one, and a GenMD4 one with a card."""

from pathlib import Path

import pytest
import torch

from seqdiff.core.bundle import ModelSpec, build_model, save_bundle
from seqdiff.protein.model import protein_spec
from seqdiff.training.config import ModelConfig

EXTRA = {"modality": "protein", "alphabet": "ESM-1b"}


def tiny_spec(schedule: str) -> ModelSpec:
    return protein_spec(ModelConfig(dim=32, n_layers=1, n_heads=2, schedule=schedule))


@pytest.fixture(scope="session")
def md4_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = tiny_spec("linear")
    return save_bundle(tmp_path_factory.mktemp("md4"), build_model(spec), spec, EXTRA)


@pytest.fixture(scope="session")
def genmd4_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Distinct per-token rates (so their order is testable), a README and a training record."""
    spec = tiny_spec("genmd4")
    model = build_model(spec)
    with torch.no_grad():
        model.schedule.w_raw.copy_(torch.linspace(-2.0, 2.0, model.schedule.w_raw.numel()))
    folder = save_bundle(tmp_path_factory.mktemp("genmd4"), model, spec, {**EXTRA, "training": {"step": 7}})
    (folder / "README.md").write_text("# Tiny test model\n\nUntrained.\n")
    return folder
