"""The one declaration of the fit settings: the imputer's defaults, the CLI's flags and the engine's names."""

from __future__ import annotations

import argparse
import inspect
from dataclasses import fields

import pytest
from sklearn.base import clone

from seqdiff.core.diffusion import WEIGHTINGS
from seqdiff.core.schedules import SCHEDULES as MD4_SCHEDULES
from seqdiff.errors import SeqdiffError
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.tabular.settings import (
    LOSS_WEIGHTINGS,
    SCHEDULES,
    FitSettings,
    add_fit_flags,
    fit_flags_given,
    given_fit_settings,
)


def test_the_names_are_the_engines():
    assert set(SCHEDULES) == {*MD4_SCHEDULES, "genmd4"}
    assert set(LOSS_WEIGHTINGS) == {"auto", *WEIGHTINGS}


def test_the_imputer_takes_every_fit_setting_with_its_default():
    signature = inspect.signature(MaskedDiffusionImputer).parameters
    for f in fields(FitSettings):
        assert signature[f.name].default == f.default, f.name
    imputer = clone(MaskedDiffusionImputer(max_steps=7, n_bins=4))
    assert FitSettings.of(imputer.get_params()) == FitSettings(max_steps=7, n_bins=4)


def test_the_cli_flags_map_to_the_settings():
    parser = argparse.ArgumentParser()
    add_fit_flags(parser)
    flags = {a.option_strings[0] for a in parser._actions if a.option_strings[0] != "-h"}
    assert flags == {
        "--max-steps",
        "--max-extra-steps",
        "--extend-tol",
        "--max-minutes",
        "--bins",
        "--max-bin-width",
        "--value-frequencies",
        "--fit-batch-rows",
        "--early-stopping",
        "--n-iter-no-change",
        "--loss-weighting",
        "--optimizer",
        "--precision",
        "--n-layers",
    }
    args = parser.parse_args(["--fit-batch-rows", "64", "--max-minutes", "1.5", "--no-early-stopping"])
    assert given_fit_settings(args) == {"batch_rows": 64, "max_minutes": 1.5, "early_stopping": False}
    assert fit_flags_given(args) == ["--max-minutes", "--fit-batch-rows", "--early-stopping"]
    assert given_fit_settings(parser.parse_args(["--n-layers", "2"])) == {"n_layers": 2}
    with_defaults = argparse.ArgumentParser()
    add_fit_flags(with_defaults, defaults=True)
    assert given_fit_settings(with_defaults.parse_args([]))["n_bins"] == FitSettings.n_bins
    assert "max_steps" not in given_fit_settings(with_defaults.parse_args([]))  # None: worked out per table


def test_narrow_tables_take_more_rows_per_step_and_fewer_steps():
    # At least 4,096 cells and 256 rows per batch; the schedule shows the model 512,000 rows; at most one
    # round of half of it past it.
    for n_columns, batch, steps in [(4, 1024, 500), (10, 410, 1249), (16, 256, 2000), (40, 256, 2000)]:
        settings = FitSettings().for_table(n_columns, 50_000)
        assert (settings.batch_rows, settings.max_steps, settings.max_extra_steps) == (
            batch,
            steps,
            steps // 2,
        )
        assert settings.batch_rows * settings.max_steps == pytest.approx(512_000, rel=1e-3)
    # What the user sets stays; a batch is never larger than the table, the schedule never over 2,000 steps.
    given = FitSettings(batch_rows=64, max_steps=30, max_extra_steps=0).for_table(4, 50_000)
    assert (given.batch_rows, given.max_steps, given.max_extra_steps) == (64, 30, 0)
    assert FitSettings(batch_rows=512).for_table(4, 50_000).max_steps == 1000
    small = FitSettings().for_table(4, 300)
    assert (small.batch_rows, small.max_steps) == (300, 1707)
    assert FitSettings().for_table(4, 50).max_steps == 2000
    # Muon from 16,000 training rows, AdamW below; a choice given stays.
    assert [FitSettings().for_table(10, rows).optimizer for rows in (15_999, 16_000)] == ["adamw", "muon"]
    assert FitSettings(optimizer="adamw").for_table(10, 50_000).optimizer == "adamw"
    for bad in ({"max_steps": 0}, {"batch_rows": 0}, {"max_extra_steps": -1}, {"optimizer": "sgd"}):
        with pytest.raises(SeqdiffError, match=next(iter(bad))):
            FitSettings(**bad).check()
    FitSettings().check()  # None: worked out per table
