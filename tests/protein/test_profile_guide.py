"""Profile guidance: designs placed on the family's reference, the log-odds prior, and designs that the
family's profile (built from other members) recognises more often with it than without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqdiff.protein import alphabet
from seqdiff.protein.design import DesignJob, design, plan_from_records
from seqdiff.protein.family import FamilyProfile
from seqdiff.protein.homologs import Homologs, read_homologs
from seqdiff.protein.io import ProteinRecord
from seqdiff.protein.profile_guide import UNPLACED, ProfileGuide, place_template, reference_states

TOY = ("MKTAYIAKQRQISFVKSHFSRQ", "MKSAYIAKQRNISFVKSHFSRQ", "MRTAYIAKQRQVSFVKAHFSKQ")


@pytest.fixture(scope="module")
def toy_profile() -> FamilyProfile:
    return FamilyProfile.from_homologs(Homologs("toy", ("a", "b", "c"), TOY, TOY, True))


@pytest.mark.parametrize(
    ("template", "starts", "expected"),
    [
        # the reference's own layout: position by position
        ("MK__YIA__R", (), list(range(10))),
        ("__________", (), list(range(10))),
        # nothing fixed, another length: spread evenly over the reference
        ("_____", (), [0, 2, 4, 7, 9]),
        # a segment longer than the reference's gap: its middle is an insertion
        ("MK______AK", (), [0, 1, 2, 3, UNPLACED, UNPLACED, 4, 5, 6, 7]),
        # shorter: the reference's middle is skipped
        ("MK_AK", (), [0, 1, 2, 6, 7]),
        # flanks run outwards from their motif, within the reference
        ("____KT_____", (), [UNPLACED, UNPLACED, UNPLACED, 0, 1, 2, 3, 4, 5, 6, 7]),
        # motifs out of the reference's order: each half takes its own motif's neighbours
        ("QR____MK", (), [8, 9, UNPLACED, UNPLACED, UNPLACED, UNPLACED, 0, 1]),
        # a motif that is not in the reference places nothing around it
        ("__WW__", (), [UNPLACED] * 6),
    ],
)
def test_place_template(template: str, starts: tuple, expected: list[int]) -> None:
    assert place_template(template, "MKTAYIAKQR", starts).tolist() == expected


def test_a_repeated_motif_is_placed_at_its_contig_number() -> None:
    reference = "AKGGGGGAKG"
    assert place_template("AK_", reference, (7,)).tolist() == [7, 8, 9]
    assert place_template("AK_", reference, (1,)).tolist() == [0, 1, 2]


def test_reference_states_mark_inserts(toy_profile: FamilyProfile) -> None:
    plain = reference_states(toy_profile.hmm, TOY[0])
    assert plain.tolist() == list(range(1, 23))
    inserted = reference_states(toy_profile.hmm, TOY[0][:11] + "WWWWWW" + TOY[0][11:])
    assert (inserted[11:17] == 0).all() and inserted[17:].tolist() == list(range(12, 23))


def test_the_prior_is_the_profile_log_odds_at_designed_placed_positions(toy_profile: FamilyProfile) -> None:
    guide = ProfileGuide.from_hmm(toy_profile.hmm, TOY[0], weight=2.0)
    job = DesignJob("toy", 0, "MKTAY" + "_" * 17)
    prior = guide(job)
    assert prior.shape == (22, alphabet.VOCAB_SIZE)
    assert not prior[:5].any()  # fixed positions
    amino = [alphabet.TOKEN_ID[a] for a in alphabet.STANDARD_AA]
    others = np.setdiff1d(np.arange(alphabet.VOCAB_SIZE), amino)
    assert not prior[:, others].any()
    # the family's residue at a designed position is favoured, by twice its log-odds
    for position in (5, 12, 20):
        row = prior[position, amino]
        assert alphabet.STANDARD_AA[int(np.argmax(row))] == TOY[0][position]
    half = ProfileGuide.from_hmm(toy_profile.hmm, TOY[0], weight=1.0)(job)
    np.testing.assert_allclose(prior, 2 * half, rtol=1e-5)
    assert not ProfileGuide.from_hmm(toy_profile.hmm, TOY[0], weight=0.0)(job).any()


@pytest.fixture(scope="module")
def family_split(shared: Path) -> tuple[Homologs, Homologs]:
    """The 1PRW family in two halves (the query in both): one guides, the other referees."""
    return read_homologs(shared / "protein" / "family" / "evodiff_scaffold_msas" / "1prw.a3m.gz").halves()


def test_guided_designs_are_recognised_by_a_referee_built_from_other_members(family_split) -> None:
    guiding, refereeing = (FamilyProfile.from_homologs(h) for h in family_split)
    query = family_split[0].sequences[0]
    jobs = plan_from_records([ProteinRecord("1prw", "", query)], fix="16-35,52-71", n=8)
    scaffold_bits = {}
    for weight in (0.0, 3.0):
        guide = ProfileGuide.from_hmm(guiding.hmm, query, weight)
        designs = design(jobs, steps=25, seed=0, batch_size=8, prior=guide)
        assert all(d.sequence[15:35] == query[15:35] for d in designs)
        table = refereeing.score([d.sequence for d in designs], [~d.job.fixed for d in designs])
        scaffold_bits[weight] = np.nan_to_num(table["scaffold_bits"].to_numpy(), nan=-10.0)
    # the shipped model alone writes scaffolds the family does not know; guided, they score far higher
    assert np.median(scaffold_bits[3.0]) > np.median(scaffold_bits[0.0]) + 15
