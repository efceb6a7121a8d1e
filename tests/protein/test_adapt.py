"""Family-adapted design: adaptation and its cache, the one-command CLI path, and its bad input.

A tiny random model stands in for the shipped one (training steps are what is tested, not quality);
the homologs are real (the 1PRW family's A3M in ../shared).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from seqdiff.cli import main
from seqdiff.errors import SeqdiffError
from seqdiff.protein.adapt import ADAPTED, adapt, adaptation_key
from seqdiff.protein.family_settings import AdaptRecipe
from seqdiff.protein.io import read_sequences
from seqdiff.protein.model import load_protein_model

FAST = AdaptRecipe(steps=3, check_every=2, max_tokens=1024)


@pytest.fixture(scope="module")
def family_files(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first 40 rows of the 1PRW family's A3M (its first row is the query), and the query."""
    lines = gzip.open(shared / "protein/family/evodiff_scaffold_msas/1prw.a3m.gz", "rt").read().splitlines()
    rows: list[list[str]] = []
    for line in lines:
        if line.startswith(">"):
            rows.append([line])
        elif rows:
            rows[-1].append(line)
    folder = tmp_path_factory.mktemp("family")
    a3m = folder / "1prw_small.a3m"
    a3m.write_text("\n".join(line for row in rows[:40] for line in row) + "\n")
    query = "".join(rows[0][1:]).replace("-", "")
    fasta = folder / "query.fasta"
    fasta.write_text(f">1prw\n{query}\n")
    return {"a3m": a3m, "query": fasta}


def homolog_sequences(a3m: Path) -> list[str]:
    return [r.sequence.replace("-", "").upper() for r in read_sequences(a3m)]


def test_adapt_trains_once_then_reuses_the_cache(
    tiny_protein_model: Path, family_files, tmp_path: Path
) -> None:
    homologs = homolog_sequences(family_files["a3m"])
    steps = []
    first = adapt(
        homologs, base=tiny_protein_model, recipe=FAST, cache=tmp_path, progress=lambda s, n: steps.append(s)
    )
    assert not first.reused and steps[-1] == FAST.steps
    config = json.loads((first.path / "config.json").read_text())
    assert config["adaptation"]["key"] == first.key and config["adaptation"]["homologs"] == len(set(homologs))
    assert config["training"]["step"] <= FAST.steps
    load_protein_model(first.path)  # a model like any other
    stamp = (first.path / "model.safetensors").stat().st_mtime_ns
    again = adapt(homologs, base=tiny_protein_model, recipe=FAST, cache=tmp_path)
    assert again.reused and again.path == first.path
    assert (again.path / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / ADAPTED).iterdir()] == [first.key]


def test_the_key_names_weights_homologs_and_recipe(tiny_protein_model: Path) -> None:
    key = adaptation_key(tiny_protein_model, ["MKTAYIAK", "MKTAYLAK"], FAST)
    assert key != adaptation_key(tiny_protein_model, ["MKTAYIAK", "MKTAYLAR"], FAST)
    assert key != adaptation_key(tiny_protein_model, ["MKTAYIAK", "MKTAYLAK"], AdaptRecipe(steps=4))
    assert key == adaptation_key(tiny_protein_model, ["MKTAYIAK", "MKTAYLAK"], FAST)


def test_a_failed_adaptation_leaves_no_cache_entry(tiny_protein_model: Path, family_files, tmp_path) -> None:
    def fail(step: int, total: int) -> None:
        if step == 2:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        adapt(homolog_sequences(family_files["a3m"]), base=tiny_protein_model, recipe=FAST, cache=tmp_path,
              progress=fail)  # fmt: skip
    assert list((tmp_path / ADAPTED).iterdir()) == []


def test_a_killed_adaptation_leaves_no_cache_entry(tiny_protein_model: Path, family_files, tmp_path) -> None:
    env = {**os.environ, "SEQDIFF_CACHE": str(tmp_path)}
    command = [sys.executable, "-m", "seqdiff.cli", "adapt", str(family_files["a3m"]), "-o", str(tmp_path / "out"),
               "--checkpoint", str(tiny_protein_model), "--adapt-steps", "100000"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # until the scratch entry exists (training starts right after), at most 60 s
            if (tmp_path / ADAPTED).is_dir() and any((tmp_path / ADAPTED).iterdir()):
                break
            time.sleep(0.1)
        time.sleep(1)
    finally:
        process.kill()
        process.wait()
    entries = [p.name for p in (tmp_path / ADAPTED).iterdir()] if (tmp_path / ADAPTED).is_dir() else []
    assert all(name.startswith(".") for name in entries)  # only a hidden scratch folder, never an entry
    assert not (tmp_path / "out").exists()


def test_adapt_refuses_fewer_than_two_homologs(tiny_protein_model: Path, tmp_path: Path) -> None:
    with pytest.raises(SeqdiffError, match="at least 2"):
        adapt(["MKTAYIAK", "mktayiak"], base=tiny_protein_model, recipe=FAST, cache=tmp_path)


def design_args(family_files, model: Path, out: Path) -> list[str]:
    return [
        "design", str(family_files["query"]), "--fix", "10-20", "-n", "3", "--steps", "4",
        "--checkpoint", str(model), "-o", str(out), "--adapt-steps", "3",
    ]  # fmt: skip


def test_design_with_homologs_adapts_scores_and_ranks(
    tiny_protein_model: Path, family_files, tmp_path: Path, private_cache: Path
) -> None:
    out, table = tmp_path / "designs.fasta", tmp_path / "positions.parquet"
    args = design_args(family_files, tiny_protein_model, out)
    assert (
        main(
            [
                *args,
                "--homologs",
                str(family_files["a3m"]),
                "--rank-by",
                "family",
                "--per-position",
                str(table),
            ]
        )
        == 0
    )
    records = read_sequences(out)
    query = read_sequences(family_files["query"])[0].sequence
    assert len(records) == 3 and all(r.sequence[9:20] == query[9:20] for r in records)
    fields = [dict(part.split("=", 1) for part in r.description.split()) for r in records]
    for f in fields:
        assert f["homologs"] == str(family_files["a3m"]) and f["model"] == str(tiny_protein_model)
        assert len(f["adapted"]) == 16 and (private_cache / ADAPTED / f["adapted"]).is_dir()
        assert 0 <= float(f["nearest_identity"]) <= 1
        assert {"family_bits", "family_evalue", "scaffold_bits", "scaffold_evalue"} <= f.keys()
        assert f["profile_weight"] == "3"
    bits = [float(f["family_bits"]) for f in fields]
    assert [b for b in bits if b == b] == sorted((b for b in bits if b == b), reverse=True)
    positions = pd.read_parquet(table)
    assert {"family_bits", "scaffold_evalue", "nearest_identity"} <= set(positions.columns)
    assert len(positions) == 3 * len(query)


def test_a_second_design_with_the_same_homologs_reuses_the_adapted_model(
    tiny_protein_model: Path, family_files, tmp_path: Path, capsys
) -> None:
    for name in ("a", "b"):
        args = design_args(family_files, tiny_protein_model, tmp_path / f"{name}.fasta")
        assert main([*args, "--homologs", str(family_files["a3m"])]) == 0
    assert "reused from the cache" in capsys.readouterr().err
    first, second = (read_sequences(tmp_path / f"{n}.fasta") for n in ("a", "b"))
    assert [r.sequence for r in first] == [r.sequence for r in second]


def test_seqdiff_adapt_writes_a_model_folder(tiny_protein_model: Path, family_files, tmp_path: Path) -> None:
    out = tmp_path / "adapted"
    args = ["adapt", str(family_files["a3m"]), "-o", str(out), "--checkpoint", str(tiny_protein_model)]
    assert main([*args, "--adapt-steps", "3"]) == 0
    _, extra = load_protein_model(out)
    assert len(extra["adaptation"]["key"]) == 16 and extra["adaptation"]["recipe"]["steps"] == 3
    assert main([*args, "--adapt-steps", "3"]) == 2  # never overwritten


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no sequences"),
        (">a\nMKTAYIAKQR\n", "one sequence|at least 2"),
        (">a\nMKTAYIAKQR\n>b\nMKT1YIAKQR\n", "not an amino acid"),
    ],
)
def test_bad_homolog_files_are_one_line_errors_and_write_nothing(
    tiny_protein_model: Path, family_files, tmp_path: Path, capsys, content: str, message: str
) -> None:
    homologs = tmp_path / "homologs.fasta"
    homologs.write_text(content)
    out = tmp_path / "designs.fasta"
    assert main([*design_args(family_files, tiny_protein_model, out), "--homologs", str(homologs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seqdiff: error:")
    assert re.search(message, err[0])
    assert not out.exists()


@pytest.mark.parametrize("weight", ["-1", "nan", "inf"])
def test_a_bad_profile_weight_is_refused_before_any_work(
    tiny_protein_model: Path, family_files, tmp_path: Path, capsys, private_cache: Path, weight: str
) -> None:
    out = tmp_path / "designs.fasta"
    args = [*design_args(family_files, tiny_protein_model, out), "--homologs", str(family_files["a3m"])]
    cached = sorted(private_cache.rglob("*"))
    assert main([*args, "--profile-weight", weight]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"seqdiff: error: --profile-weight must be a number >= 0, got {float(weight)}"]
    assert not out.exists() and sorted(private_cache.rglob("*")) == cached


def test_an_a3m_of_another_protein_and_a_missing_database_are_refused(
    tiny_protein_model: Path, family_files, tmp_path: Path, capsys
) -> None:
    other = tmp_path / "other.fasta"
    other.write_text(">other\nGSHMLEDPVRLLKQ\n")
    out = tmp_path / "designs.fasta"
    args = design_args(family_files, tiny_protein_model, out)
    args[1] = str(other)
    args[3] = "1-3"
    assert main([*args, "--homologs", str(family_files["a3m"])]) == 2
    assert (
        main(
            [
                *design_args(family_files, tiny_protein_model, out),
                "--homologs-from",
                str(tmp_path / "no.fasta"),
            ]
        )
        == 2
    )
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("seqdiff: error:") for e in errors)
    assert not out.exists()
