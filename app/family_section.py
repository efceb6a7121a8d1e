"""The design page's family section: where the homologs come from (an upload, or a local database to
search), how long the adaptation trains, how strongly the profile steers, and the adaptation itself
under a progress bar."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import common
import streamlit as st

from seqdiff.protein.family import RECOGNISED_EVALUE, SEARCH_SPACE_SEQUENCES
from seqdiff.protein.family_design import Family, prepare_family
from seqdiff.protein.family_settings import DEFAULT_WEIGHT, AdaptRecipe
from seqdiff.protein.io import ProteinRecord

SOURCES = {"none": "None", "file": "Upload homologs", "database": "Search a local database"}
HOMOLOG_TYPES = ["a3m", "fasta", "fa", "faa", "fas", "afa", "sto", "sth", "stk", "txt", "gz"]


@dataclass(frozen=True)
class FamilyChoice:
    """The homologs (an uploaded file as (name, bytes), or a database path), the adaptation recipe and
    the profile's weight; ``ready`` once the homologs are given."""

    upload: tuple[str, bytes] | None
    database: str | None
    recipe: AdaptRecipe
    profile_weight: float = DEFAULT_WEIGHT

    @property
    def ready(self) -> bool:
        return self.upload is not None or bool(self.database)


def family_widgets() -> FamilyChoice | None:
    """The family section's widgets; None when no family is wanted."""
    st.subheader("Family (optional)")
    source = st.radio(
        "Adapt the model to homologs of the input",
        list(SOURCES),
        format_func=SOURCES.get,
        key="family_source",
        horizontal=True,
        help="The model is fine-tuned on the homologs (cached: the same homologs and settings are "
        "adapted once), designs come from the adapted model, and each design is scored against the "
        "family's profile HMM.",
    )
    if source == "none":
        return None
    upload, database = None, None
    if source == "file":
        given = st.file_uploader(
            "Homologs (A3M, FASTA aligned or not, Stockholm; gzip allowed)",
            type=HOMOLOG_TYPES,
            key="family_upload",
        )
        upload = (given.name, given.getvalue()) if given is not None else None
    else:
        database = st.text_input(
            "Database on this machine (protein FASTA, gzip allowed), searched with jackhmmer",
            key="family_database",
            placeholder="/data/uniref50.fasta.gz",
        ).strip()
    left, right = st.columns(2)
    steps = left.number_input("Adaptation steps", 1, 100_000, AdaptRecipe.steps, key="family_steps")
    minutes = right.number_input(
        "Adaptation time cap (minutes)",
        0.1,
        600.0,
        AdaptRecipe.minutes,
        key="family_minutes",
        help="The adaptation stops here, keeping its best weights.",
    )
    weight = st.number_input(
        "Profile weight",
        0.0,
        20.0,
        DEFAULT_WEIGHT,
        step=0.5,
        key="family_profile_weight",
        help="How strongly the family's profile HMM steers the designed positions: each residue's "
        "probability is multiplied by its profile odds to this power. 0: the profile only scores.",
    )
    recipe = AdaptRecipe(steps=int(steps), minutes=float(minutes))
    choice = FamilyChoice(upload, database, recipe, float(weight))
    if not choice.ready:
        st.info("Upload the homologs." if source == "file" else "Type the database's path.")
    return choice


def adapt_to_family(choice: FamilyChoice, queries: list[ProteinRecord], folder: str) -> Family:
    """The family of ``queries`` with the model in ``folder`` adapted to it, under a progress bar."""
    finding = "Reading the homologs…" if choice.upload else f"Searching {choice.database} for homologs…"
    bar = st.progress(0.0, text=finding)

    def report(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Adapting the model: step {done} of {total}")

    options = {
        "checkpoint": None if common.is_default_model(folder) else folder,
        "recipe": choice.recipe,
        "progress": report,
        "profile_weight": choice.profile_weight,
    }
    try:
        if choice.upload is None:
            return prepare_family(queries, database=str(Path(choice.database).expanduser()), **options)
        with common.as_file(*choice.upload) as path:
            family = prepare_family(queries, homologs=path, **options)
        # Headers name the uploaded file, not the temporary copy it was read from.
        return replace(family, source=choice.upload[0])
    finally:
        bar.empty()


def family_note(family: Family) -> str:
    """Where the homologs came from, and whether the adapted model was trained now or reused."""
    how = "reused from the cache" if family.model.reused else "trained now and cached"
    return f"{len(family.homologs):,} homologs from {family.source}; adapted model {how} (key {family.model.key})."


def recognised_bits(family: Family) -> float:
    """The bit score whose E-value is `RECOGNISED_EVALUE`.

    HMMER's E-value of a sequence score s is Z exp(-lambda (s - tau)), with tau and lambda the
    profile's forward-score calibration and Z `SEARCH_SPACE_SEQUENCES`; solved here for s."""
    calibration = family.profile.hmm.evalue_parameters
    return calibration.f_tau + math.log(SEARCH_SPACE_SEQUENCES / RECOGNISED_EVALUE) / calibration.f_lambda
