"""Shared fixtures: paths to ../shared/data, a tiny untrained protein model bundle, and the imputation
error of a small table model on one column."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# pyproject's --doctest-modules would also import every conftest.py as a module; they share one module
# name ("conftest", tests/ is no package), so the second is an "import file mismatch". They hold no
# doctests, and pytest still loads them as conftests.
collect_ignore_glob = ["conftest.py", "*/conftest.py"]


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for the whole suite: the tensors are small, and on a shared 2-core machine
    two threads fight each other (fitting 30 steps took 75 s that way on a busy machine, 4 s with one).
    Session scope, so that module- and session-scoped fixtures that train run with it too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The suite's own seqdiff cache (adapted models, converted ESM-2 checkpoints), never the user's."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEQDIFF_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared/data, read in place (skips when it is absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def y_imputation_error() -> Callable[..., float]:
    """A function of (complete table, bool mask of its rows, **imputer settings): hide column y at the
    masked rows, fit a small `MaskedDiffusionImputer` (1 layer, 400 steps at learning rate 0.01, no early
    stopping) on the holed table, and return the mean absolute error of the imputed y cells."""
    from seqdiff.tabular.imputer import MaskedDiffusionImputer

    small = {"dim": 32, "n_layers": 1, "n_heads": 2, "max_steps": 400, "early_stopping": False, "lr": 1e-2}

    def error(complete: pd.DataFrame, hidden: np.ndarray, **settings) -> float:
        holed = complete.copy()
        holed.loc[hidden, "y"] = np.nan
        out = MaskedDiffusionImputer(**{**small, "device": "cpu", **settings}).fit_transform(holed)
        return float((out["y"][hidden] - complete["y"][hidden]).abs().mean())

    return error


@pytest.fixture(scope="session")
def tiny_protein_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer protein model bundle (random weights): fast, and enough to exercise every path."""
    from seqdiff.core.bundle import build_model, save_bundle
    from seqdiff.protein.model import protein_spec
    from seqdiff.training.config import ModelConfig

    torch.manual_seed(0)
    spec = protein_spec(ModelConfig(dim=32, n_layers=1, n_heads=2), max_len=512)
    folder = tmp_path_factory.mktemp("models") / "tiny-protein"
    save_bundle(folder, build_model(spec), spec, {"modality": "protein", "alphabet": "ESM-1b"})
    return folder
