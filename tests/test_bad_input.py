"""The bad-input matrix: every case is a one-line error naming the culprit, exit status 2, no
traceback, and nothing is written."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from seqdiff.cli import main

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
