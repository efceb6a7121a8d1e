"""The one declaration of the fit settings: the imputer's defaults, the CLI's flags and the engine's names."""

from __future__ import annotations

import argparse
import inspect
from dataclasses import fields

from sklearn.base import clone

from seqdiff.core.diffusion import WEIGHTINGS
from seqdiff.core.schedules import SCHEDULES as MD4_SCHEDULES
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
        "--loss-weighting",
        "--precision",
        "--n-layers",
    }
    args = parser.parse_args(["--fit-batch-rows", "64", "--max-minutes", "1.5", "--no-early-stopping"])
    assert given_fit_settings(args) == {"batch_rows": 64, "max_minutes": 1.5, "early_stopping": False}
    assert fit_flags_given(args) == ["--max-minutes", "--fit-batch-rows", "--early-stopping"]
    assert given_fit_settings(parser.parse_args(["--n-layers", "2"])) == {"n_layers": 2}
    with_defaults = argparse.ArgumentParser()
    add_fit_flags(with_defaults, defaults=True)
    assert given_fit_settings(with_defaults.parse_args([]))["max_steps"] == FitSettings.max_steps
