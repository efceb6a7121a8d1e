"""The family profile as a referee: held-out natural members are recognised, shuffled and random
sequences are not, scaffold-only scores, batch-independent E-values and nearest identity."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.protein.family import (
    MAX_PROFILE_SEQUENCES,
    RECOGNISED_EVALUE,
    FamilyProfile,
    recognised,
)
from seqdiff.protein.homologs import Homologs, read_homologs

COLUMNS = [
    "family_bits",
    "family_evalue",
    "recognised",
    "scaffold_bits",
    "scaffold_evalue",
    "scaffold_recognised",
    "nearest_identity",
    "nearest_homolog",
]


def subset(homologs: Homologs, indices: np.ndarray) -> Homologs:
    return replace(
        homologs,
        ids=tuple(homologs.ids[i] for i in indices),
        sequences=tuple(homologs.sequences[i] for i in indices),
        aligned=tuple(homologs.aligned[i] for i in indices),
    )


def shuffled(seq: str, rng: np.random.Generator) -> str:
    return "".join(rng.permutation(list(seq)))


@pytest.fixture(scope="module")
def split(shared: Path) -> tuple[Homologs, Homologs]:
    """1prw's 1,119 homologs: 100 held out at random (never the query), the rest build the profile."""
    homologs = read_homologs(shared / "protein" / "family" / "evodiff_scaffold_msas" / "1prw.a3m.gz")
    held = np.random.default_rng(1).choice(np.arange(1, len(homologs)), size=100, replace=False)
    return subset(homologs, np.setdiff1d(np.arange(len(homologs)), held)), subset(homologs, np.sort(held))


@pytest.fixture(scope="module")
def profile(split) -> FamilyProfile:
    return FamilyProfile.from_homologs(split[0])


@pytest.fixture(scope="module")
def held_out_scores(profile, split) -> pd.DataFrame:
    return profile.score(list(split[1].sequences))


def test_the_a3m_query_columns_become_the_match_states(profile, split):
    assert profile.hmm.M == len(split[0].aligned[0]) == 147
    assert profile.n_profile_sequences == min(len(split[0]), MAX_PROFILE_SEQUENCES) == 1000


def test_held_out_family_members_are_recognised(held_out_scores, split):
    assert list(held_out_scores.columns) == COLUMNS
    assert held_out_scores["recognised"].mean() >= 0.7
    # the misses are mostly fragments: members covering most of the query are nearly all recognised
    covered = np.array([sum(c != "-" for c in row) for row in split[1].aligned]) >= 100
    assert held_out_scores["recognised"][covered].mean() >= 0.85
    assert held_out_scores["family_bits"].median() > 20


def test_shuffled_and_random_sequences_are_not_recognised(profile, split):
    rng = np.random.default_rng(2)
    naturals = list(split[1].sequences)
    letters, counts = np.unique(list("".join(naturals)), return_counts=True)
    random = ["".join(rng.choice(letters, size=len(s), p=counts / counts.sum())) for s in naturals]
    scores = profile.score([shuffled(s, rng) for s in naturals] + random)
    assert not scores["recognised"].any()
    assert scores["family_evalue"].min() > 0.01


def test_evalue_is_the_same_alone_and_in_a_batch(profile, split):
    batch = list(split[1].sequences)
    bits, evalues = profile.search(batch)
    for index in (0, 37, 99):
        alone_bits, alone_evalue = profile.search([batch[index]])
        np.testing.assert_allclose([alone_bits[0], alone_evalue[0]], [bits[index], evalues[index]], rtol=1e-6)


def test_scaffold_only_scores(profile, split):
    """A natural member with a 'motif' cut out is still recognised from its scaffold; the same
    motif inside a shuffled scaffold is not."""
    rng = np.random.default_rng(3)
    fewest_gaps = min(range(len(split[1])), key=lambda i: split[1].aligned[i].count("-"))
    full = split[1].sequences[fewest_gaps]
    designed = np.ones(len(full), dtype=bool)
    designed[60:80] = False
    background = shuffled(full, rng)
    motif_only = background[:60] + full[60:80] + background[80:]
    table = profile.score(
        [full, motif_only, full], designed_masks=[designed, designed, np.zeros(len(full), bool)]
    )
    natural, decoy, all_fixed = table.to_dict("records")
    assert natural["recognised"] and natural["scaffold_recognised"]
    assert natural["scaffold_bits"] < natural["family_bits"]
    assert not decoy["scaffold_recognised"] and decoy["scaffold_evalue"] > 0.01
    assert np.isnan(all_fixed["scaffold_bits"]) and all_fixed["scaffold_evalue"] == np.inf


def test_without_masks_the_scaffold_columns_are_empty(profile, split):
    table = profile.score(list(split[1].sequences[:2]))
    assert table["scaffold_bits"].isna().all() and (table["scaffold_evalue"] == np.inf).all()
    assert not table["scaffold_recognised"].any()


def test_nearest_identity(profile, split):
    rng = np.random.default_rng(4)
    members = list(split[0].sequences[5:8])
    table = profile.score(members + [shuffled(s, rng) for s in members])
    assert table["nearest_identity"][:3].tolist() == [1.0, 1.0, 1.0]
    assert table["nearest_homolog"][:3].tolist() == list(split[0].ids[5:8])
    assert (table["nearest_identity"][3:] < 0.4).all()


def test_a_sequence_without_a_domain_hit_gets_nan_and_inf(profile):
    table = profile.score(["GGGGGGGGGG"])
    assert np.isnan(table["family_bits"][0]) and table["family_evalue"][0] == np.inf
    assert not table["recognised"][0]


def test_unaligned_homologs_are_aligned_before_building(split):
    members = split[0]
    unaligned = Homologs("toy", members.ids[:60], members.sequences[:60])
    profile = FamilyProfile.from_homologs(unaligned)
    assert profile.homologs.aligned is not None and profile.n_profile_sequences == 60
    assert profile.score([members.sequences[0]])["recognised"][0]


def test_recognised_threshold():
    assert recognised([RECOGNISED_EVALUE / 2, RECOGNISED_EVALUE, np.inf]).tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("designs", "masks", "message"),
    [
        (["MKTAY"], [[True] * 4], "design #1: its designed mask covers 4 positions, the design has 5"),
        (["MKTAY"], [[True] * 5, [True] * 5], "2 designed masks for 1 designs"),
        (["MK_AY"], None, "has undesigned positions"),
        (["MKJAY"], None, "position 3: 'J' is not an amino acid"),
    ],
)
def test_bad_designs(profile, designs, masks, message):
    with pytest.raises(SeqdiffError, match=message):
        profile.score(designs, designed_masks=masks)
