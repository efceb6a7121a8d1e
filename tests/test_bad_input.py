"""The bad-input matrix: every case is a one-line error naming the culprit, exit status 2, no
traceback, and nothing is written."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqdiff.cli import main
from seqdiff.core.bundle import save_bundle
from seqdiff.errors import SeqdiffError
from seqdiff.tabular.imputer import MaskedDiffusionImputer

UBQ = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"


def seqdiff(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI in this process (fast) and capture what a user would see."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqdiff: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


FASTA_CASES = {
    "no_header": (b"MKTAYIAKQR\n", ["no_header.fasta"]),
    "empty_record": (b">a\nMKT\n>empty\n>c\nMKV\n", ["empty_record.fasta", "'empty'"]),
    "binary": (bytes(range(256)) * 4, ["binary.fasta"]),
    "bad_letter": (b">x\nMKTJAYIAKQR\n", ["bad_letter.fasta", "'x'", "position 4", "'J'"]),
    "stop_inside": (b">x\nMKT*AYIAKQR\n", ["stop_inside.fasta", "'x'"]),
    "empty_file": (b"", ["empty_file.fasta"]),
}


@pytest.mark.parametrize("name", sorted(FASTA_CASES))
def test_malformed_fasta(name: str, tmp_path: Path, tiny_protein_model: Path) -> None:
    content, needles = FASTA_CASES[name]
    path = tmp_path / f"{name}.fasta"
    path.write_bytes(content)
    out = tmp_path / "out.fasta"
    result = seqdiff(
        "design", str(path), "--fix", "1-2", "--checkpoint", str(tiny_protein_model), "-o", str(out)
    )
    assert_one_line_error(result, *needles)
    assert not out.exists()
    assert path.read_bytes() == content


def test_lower_case_and_terminal_stop_are_accepted(tmp_path: Path, tiny_protein_model: Path) -> None:
    path = tmp_path / "ok.fasta"
    path.write_text(">x\nmktayiakqr*\n")
    result = seqdiff(
        "design", str(path), "--fix", "1-3", "--steps", "4", "--checkpoint", str(tiny_protein_model)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("MKT")


@pytest.mark.parametrize(
    "fix, needle",
    [
        ("0-5", "start at 1"),
        ("70-80", "beyond the end"),
        ("10-5", "reversed"),
        ("1-5,4-8", "overlap"),
        ("x", "not a number"),
    ],
)
def test_bad_fix_ranges(fix: str, needle: str, tmp_path: Path, tiny_protein_model: Path) -> None:
    path = tmp_path / "in.fasta"
    path.write_text(f">ubq\n{UBQ}\n")
    assert_one_line_error(
        seqdiff("design", str(path), "--fix", fix, "--checkpoint", str(tiny_protein_model)), needle
    )


def test_a_batch_size_below_one_is_refused(tmp_path: Path, tiny_protein_model: Path) -> None:
    path = tmp_path / "in.fasta"
    path.write_text(f">ubq\n{UBQ}\n")
    result = seqdiff(
        "design", str(path), "--fix", "1-3", "--batch-size", "0", "--checkpoint", str(tiny_protein_model)
    )
    assert_one_line_error(result, "--batch-size must be at least 1, got 0")  # it was a ZeroDivisionError


def test_sequence_longer_than_the_model_is_refused(tmp_path: Path, tiny_protein_model: Path) -> None:
    path = tmp_path / "long.fasta"
    path.write_text(">long\n" + "A" * 600 + "\n")
    result = seqdiff("design", str(path), "--fix", "1-5", "--checkpoint", str(tiny_protein_model))
    assert_one_line_error(result, "'long'", "600", "maximum of 512")


@pytest.mark.parametrize(
    "contig, needle",
    [
        ("5-10,Z16-35,5-10", "chain 'Z' not found"),
        ("5-10,A1000-1010,5-10", "A1000"),
        ("A16-", "A16-"),
        ("5-3,A16-35", "5-3"),
    ],
)
def test_bad_contigs(contig: str, needle: str, shared: Path, tiny_protein_model: Path) -> None:
    pdb = shared / "protein/motif_scaffolding/pdbs/1prw.pdb.gz"
    result = seqdiff("design", str(pdb), "--contig", contig, "--checkpoint", str(tiny_protein_model))
    assert_one_line_error(result, needle)


def test_missing_input_and_bad_checkpoint(tmp_path: Path) -> None:
    assert_one_line_error(seqdiff("design", str(tmp_path / "nope.fasta"), "--fix", "1-3"), "nope.fasta")
    path = tmp_path / "in.fasta"
    path.write_text(f">ubq\n{UBQ}\n")
    assert_one_line_error(
        seqdiff("design", str(path), "--fix", "1-3", "--checkpoint", str(tmp_path)), "not a seqdiff model"
    )


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.fasta"
    path.write_text(">x\nMKTJ\n")
    result = subprocess.run(
        [sys.executable, "-m", "seqdiff.cli", "design", str(path), "--fix", "1-2"],
        capture_output=True,
        text=True,
    )
    assert_one_line_error(result, "bad.fasta", "'J'")


# --- tables ------------------------------------------------------------------------------------


def small_table(rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a = rng.normal(size=rows)
    df = pd.DataFrame(
        {"a": a, "b": 2 * a + rng.normal(scale=0.1, size=rows), "c": rng.choice(["x", "y"], rows)}
    )
    df.loc[::5, "b"] = np.nan
    return df


def test_not_parquet_zero_rows_duplicate_columns(tmp_path: Path) -> None:
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b"this is not parquet at all" * 10)
    assert_one_line_error(seqdiff("impute", str(fake), "-o", str(tmp_path / "o.parquet")), "fake.parquet")
    empty = tmp_path / "empty.parquet"
    small_table().iloc[:0].to_parquet(empty)
    assert_one_line_error(seqdiff("impute", str(empty), "-o", str(tmp_path / "o.parquet")), "empty.parquet")
    dup = tmp_path / "dup.csv"
    dup.write_text("a,a,b\n1,2,3\n4,,6\n")
    assert_one_line_error(seqdiff("impute", str(dup), "-o", str(tmp_path / "o.parquet")), "dup.csv", "'a'")
    assert not (tmp_path / "o.parquet").exists()


def test_model_trained_on_another_schema(tmp_path: Path) -> None:
    src = tmp_path / "t.parquet"
    small_table().to_parquet(src)
    model = tmp_path / "model"
    code = seqdiff(
        "impute", str(src), "-o", str(tmp_path / "o.parquet"), "--save-model", str(model), "--max-steps", "5"
    )
    assert code.returncode == 0, code.stderr
    other = tmp_path / "other.parquet"
    small_table().rename(columns={"c": "colour"}).to_parquet(other)
    result = seqdiff("impute", str(other), "-o", str(tmp_path / "o2.parquet"), "--checkpoint", str(model))
    assert_one_line_error(result, "'c'")
    assert not (tmp_path / "o2.parquet").exists()


def test_sampling_steps_only_with_draws_and_positive(tmp_path: Path) -> None:
    src = tmp_path / "t.parquet"
    small_table().to_parquet(src)
    model, out = tmp_path / "model", tmp_path / "o.parquet"
    fitted = seqdiff("impute", str(src), "-o", str(out), "--save-model", str(model), "--max-steps", "5")
    assert fitted.returncode == 0, fitted.stderr
    out.unlink()
    given = ["impute", str(src), "-o", str(out), "--checkpoint", str(model)]
    assert_one_line_error(seqdiff(*given, "--sampling-steps", "4"), "--sampling-steps", "--samples")
    assert_one_line_error(seqdiff(*given, "--samples", "2", "--sampling-steps", "0"), "--sampling-steps")
    synth = tmp_path / "s.parquet"
    drawn = seqdiff(
        "sample",
        "table",
        "--checkpoint",
        str(model),
        "--rows",
        "3",
        "-o",
        str(synth),
        "--sampling-steps",
        "0",
    )
    assert_one_line_error(drawn, "sampling_steps")
    assert not out.exists() and not synth.exists()


def test_nested_and_binary_columns_pass_through(tmp_path: Path) -> None:
    df = small_table()
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.append_column("tags", pa.array([[1, 2]] * len(df), pa.list_(pa.int64())))
    table = table.append_column("blob", pa.array([b"\x00\x01"] * len(df), pa.binary()))
    src = tmp_path / "nested.parquet"
    pq.write_table(table, src)
    out = tmp_path / "out.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), "--max-steps", "5")
    assert result.returncode == 0, result.stderr
    back = pq.read_table(out)
    assert back.column("tags").equals(table.column("tags")) and back.column("blob").equals(
        table.column("blob")
    )
    assert back.column("b").null_count == 0


def test_a_model_folder_that_cannot_be_made_is_refused_before_the_work(tmp_path: Path) -> None:
    """--save-model, adapt's -o and train's --out below a file: one line before any fit; and a save that
    fails anyway (a folder the system refuses) is one line too, not a traceback."""
    src, blocker = tmp_path / "t.parquet", tmp_path / "a_file"
    small_table().to_parquet(src)
    blocker.write_text("x")
    model = str(blocker / "model")
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "o.parquet"), "--save-model", model)
    assert_one_line_error(result, f"{model}: cannot save a model there: {blocker} is not a folder")
    assert not (tmp_path / "o.parquet").exists()
    config = Path(__file__).parents[1] / "pipelines" / "configs" / "protein_default.yaml"
    result = seqdiff("train", "--config", str(config), "--out", model)
    assert_one_line_error(result, "is not a folder")
    fasta = tmp_path / "q.fasta"
    fasta.write_text(f">ubq\n{UBQ}\n")
    assert_one_line_error(seqdiff("adapt", str(fasta), "-o", model), "is not a folder")
    imputer = MaskedDiffusionImputer(max_steps=2, dim=16, n_heads=2, device="cpu").fit(small_table())
    with pytest.raises(SeqdiffError, match="/proc/seqdiff: cannot save the model"):
        save_bundle("/proc/seqdiff", imputer.model_, imputer.spec_)


@pytest.mark.slow
def test_sigkill_during_impute_leaves_no_partial_output(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=200_000), "c": rng.choice(list("pqrs"), 200_000)})
    df.loc[rng.random(len(df)) < 0.3, "a"] = np.nan
    src, out, model = tmp_path / "big.parquet", tmp_path / "out.parquet", tmp_path / "model"
    df.iloc[:500].to_parquet(tmp_path / "small.parquet")
    fitted = seqdiff("impute", str(tmp_path / "small.parquet"), "-o", str(tmp_path / "s.parquet"),
                     "--save-model", str(model), "--max-steps", "5")  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    df.to_parquet(src)
    before = src.read_bytes()
    cmd = [sys.executable, "-m", "seqdiff.cli", "impute", str(src), "-o", str(out), "--checkpoint", str(model),
           "--batch-rows", "500"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    # Kill while the output is being written: its temporary file exists.
    while time.time() < deadline and proc.poll() is None and not list(tmp_path.glob(".out.parquet.*")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "impute finished before it could be killed"
    assert not out.exists(), "a partial output appeared under the output name"
    assert src.read_bytes() == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.parquet")]
    assert all(name.endswith(".tmp") for name in leftovers)  # hidden, never mistaken for the output
