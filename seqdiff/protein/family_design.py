"""Family-adapted design: the one path from homologs to scored designs, shared by the CLI and the app.

Given homologs of the input (a file, or found in a local sequence database), `prepare_family` adapts
the model to them (`seqdiff.protein.adapt`, cached), builds the family's profile HMM
(`seqdiff.protein.family`) and the guide that lets the profile steer the designed positions
(`seqdiff.protein.profile_guide`); `score_designs` then adds each design's family scores to its
header. The adapted model is a model folder like any other and the guide a small picklable object,
so the local engine and the Ray engine design with them alike.

In Python, the same path as ``seqdiff design in.fasta --fix 1-20 --homologs family.a3m``::

    family = prepare_family(read_sequences("in.fasta"), homologs="family.a3m")
    jobs = plan_from_records(read_sequences("in.fasta"), fix="1-20", n=10)
    designs = design(jobs, checkpoint=str(family.model.path), prior=family.guide)
    designs = list(score_designs(designs, family))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from seqdiff.errors import SeqdiffError
from seqdiff.protein.adapt import AdaptedModel, adapt
from seqdiff.protein.contig import MotifSegment, load_motif_source, parse_contig
from seqdiff.protein.design import Design
from seqdiff.protein.family import FamilyProfile
from seqdiff.protein.family_settings import DEFAULT_WEIGHT, AdaptRecipe
from seqdiff.protein.homologs import Homologs, read_homologs
from seqdiff.protein.io import ProteinRecord
from seqdiff.protein.model import resolve_checkpoint
from seqdiff.protein.profile_guide import ProfileGuide

# The family scores each design carries (in its header and its per-position table).
FAMILY_FIELDS = ("family_bits", "family_evalue", "scaffold_bits", "scaffold_evalue", "nearest_identity")


@dataclass(frozen=True)
class Family:
    """What designing for a family needs: its homologs, where they came from, the model that was
    adapted (``base``, as the user named it), the adapted model, the profile that scores designs and
    the guide that steers them (``prior`` of `seqdiff.protein.design.design`)."""

    homologs: Homologs
    source: str
    base: str
    model: AdaptedModel
    profile: FamilyProfile
    guide: ProfileGuide

    def header(self) -> dict[str, str]:
        """Header fields naming the base model, the homologs, the adapted model's cache key and the
        profile's weight."""
        return {
            "model": self.base,
            "homologs": self.source,
            "adapted": self.model.key,
            "profile_weight": f"{self.guide.weight:g}",
        }


def find_homologs(
    queries: Sequence[ProteinRecord],
    homologs: str | Path | None = None,
    database: str | Path | None = None,
) -> tuple[Homologs, str]:
    """Homologs from a file, or searched for in a local FASTA database (jackhmmer); and their source."""
    if (homologs is None) == (database is None):
        raise SeqdiffError("give --homologs FILE or --homologs-from DB.fasta (one of them)")
    if homologs is not None:
        query = queries[0].sequence if len(queries) == 1 and "_" not in queries[0].sequence else None
        return read_homologs(homologs, query=query), str(homologs)
    from seqdiff.protein.homolog_search import search_homologs

    found = search_homologs([q.sequence.replace("_", "") for q in queries], database)
    return found, f"search:{database}"


def motif_queries(contig: str, source: str | Path) -> list[ProteinRecord]:
    """The proteins whose family a contig's design belongs to: the SEQRES of the chains its motifs
    come from (named ``chain_A``, …), read from the motif ``source``."""
    chains = {s.chain for s in parse_contig(contig) if isinstance(s, MotifSegment)}
    seqres = load_motif_source(source).seqres
    return [ProteinRecord(f"chain_{c}", "", seqres[c]) for c in sorted(chains) if c in seqres]


def prepare_family(
    queries: Sequence[ProteinRecord],
    homologs: str | Path | None = None,
    database: str | Path | None = None,
    checkpoint: str | None = None,
    recipe: AdaptRecipe | None = None,
    progress: Callable[[int, int], None] | None = None,
    device: str = "auto",
    profile_weight: float = DEFAULT_WEIGHT,
) -> Family:
    """The family of ``queries``: homologs (`find_homologs`), the model ``checkpoint`` (default: the
    shipped one) adapted to them, their profile HMM, and its guide with ``profile_weight`` (0: the
    profile only scores). The guide places designs on the first query (without queries: on the first
    homolog, an A3M's query). See the module's example.
    """
    if not 0 <= profile_weight < float("inf"):
        raise SeqdiffError(f"--profile-weight must be a number >= 0, got {profile_weight}")
    found, source = find_homologs(queries, homologs, database)
    model = adapt(
        found.sequences, base=resolve_checkpoint(checkpoint), recipe=recipe, progress=progress, device=device
    )
    profile = FamilyProfile.from_homologs(found)
    reference = queries[0].sequence if queries else found.sequences[0]
    guide = ProfileGuide.from_hmm(profile.hmm, reference, profile_weight)
    return Family(found, source, checkpoint or "default", model, profile, guide)


def score_designs(designs: Iterable[Design], family: Family, chunk: int = 64) -> Iterator[Design]:
    """``designs`` with their family scores (`FamilyProfile.score`) in their ``scores`` and the family's
    header fields in their ``params``, yielded as they arrive (scored ``chunk`` at a time: a score does not depend on the
    other designs). ``scaffold_*`` scores the designed positions alone."""
    header = family.header()
    designs = iter(designs)
    while batch := list(islice(designs, chunk)):
        table = family.profile.score([d.sequence for d in batch], [~d.job.fixed for d in batch])
        for design, row in zip(batch, table.to_dict("records"), strict=True):
            # design() gives all its designs one shared params dict: each gets its own copy.
            design.params = {**design.params, **header}
            design.scores = {
                **design.scores,
                **{name: float(row[name]) for name in FAMILY_FIELDS},
            }
            yield design


def rank_by_family(designs: Iterable[Design]) -> list[Design]:
    """Best first: the highest family bit score (no hit last)."""
    return sorted(designs, key=lambda d: -np.nan_to_num(d.scores["family_bits"], nan=-np.inf))
