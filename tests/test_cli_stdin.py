"""``-`` as the input: a command reads its FASTA, PDB or table from stdin (``zcat x.csv.gz | seqdiff
impute - -o out.csv``, ``seqkit grep ... | seqdiff design - --fix 1-5``), as field tools do, with the
same results as from the named file and messages that call it "stdin"."""

from __future__ import annotations

import contextlib
import gzip
import io
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqdiff.cli import main
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from tests.test_bad_input import assert_one_line_error

FIT = ["--max-steps", "5", "--device", "cpu"]
FASTA = b">a\nMKTAYIAKQRQISFVKSHFSRQ\n>b\nMKTAYIAKQR\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(args: list[str], stdin: bytes | None) -> tuple[int, bytes, str]:
    """The CLI in this process, `stdin` piped in (None: a terminal, nothing piped)."""
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    source = _Terminal() if stdin is None else io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        patch.setattr("sys.stdin", source)
        code = main(args)
    out.flush()
    return code, out.buffer.getvalue(), err.getvalue()


def as_process(code: int, stderr: str) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess([], code, "", stderr)


@pytest.fixture(scope="module")
def holed() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=200).round(3), "c": rng.choice(["a", "b"], 200), "e": np.nan})
    df.loc[rng.random(200) < 0.2, "x"] = np.nan
    return df


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "tsv", "parquet", "xlsx"])
def test_impute_reads_a_table_from_stdin_as_from_its_file(holed, tmp_path: Path, kind: str):
    src = tmp_path / f"in.{kind}"
    if kind == "parquet":
        holed.to_parquet(src, index=False)
    elif kind == "xlsx":
        holed.to_excel(src, index=False)
    else:
        holed.to_csv(src, index=False, sep="\t" if kind == "tsv" else ",")
    named, piped = tmp_path / "named.csv", tmp_path / "piped.csv"
    assert run(["impute", str(src), "-o", str(named), *FIT], None)[0] == 0
    code, _, stderr = run(["impute", "-", "-o", str(piped), *FIT], src.read_bytes())
    assert code == 0, stderr
    assert piped.read_bytes() == named.read_bytes()
    assert pd.read_csv(piped, sep=None, engine="python")["x"].notna().all()
    # The empty column's warning names stdin, not the temporary copy, which is gone.
    assert "stdin: column(s) 'e' have no observed value" in stderr and "seqdiff-stdin-" not in stderr
    assert not list(Path(tempfile.gettempdir()).glob("seqdiff-stdin-*"))


def test_impute_from_stdin_to_stdout(holed):
    text = holed.to_csv(index=False).encode()
    code, stdout, stderr = run(["impute", "-", "-o", "-", *FIT], gzip.compress(text))
    assert code == 0 and stderr.strip().endswith("-> stdout"), stderr
    out = pd.read_csv(io.BytesIO(stdout))
    assert list(out.columns) == ["x", "c", "e"] and out["x"].notna().all() and len(out) == 200


def test_errors_about_stdin_name_it(holed):
    code, _, stderr = run(["impute", "-", "-o", "out.csv", *FIT], "name;ville\nMünchen;1\n".encode("cp1252"))
    assert_one_line_error(as_process(code, stderr), "stdin: not utf-8 text (byte 0xfc")
    code, _, stderr = run(["impute", "-", "--in-place", *FIT], holed.to_csv(index=False).encode())
    assert_one_line_error(as_process(code, stderr), "--in-place: the input is stdin")
    code, _, stderr = run(["impute", "-", "-o", "out.csv"], None)
    assert_one_line_error(as_process(code, stderr), "the input is - (stdin), but nothing is piped in")
    code, _, stderr = run(["design", "-", "--fix", "1-3"], b">a\nMKTAY1AKQR\n")
    assert_one_line_error(as_process(code, stderr), "stdin: record 'a': position 6: '1' is not an amino acid")
    assert not Path("out.csv").exists()


def test_design_score_and_eval_read_fasta_from_stdin(tmp_path: Path, tiny_protein_model: Path):
    src = tmp_path / "q.fasta"
    src.write_bytes(FASTA)
    model = ["--checkpoint", str(tiny_protein_model)]
    design = ["design", "--fix", "1-5", "-n", "2", "--steps", "8", *model]
    code, piped, stderr = run([*design, "-"], FASTA)
    assert code == 0, stderr
    assert piped == run([*design, str(src)], None)[1]
    assert piped.count(b">a_design") == 2 and piped.count(b">b_design") == 2
    code, scores, _ = run(["score", "-", "--passes", "1", *model], gzip.compress(FASTA))
    assert code == 0 and scores.splitlines()[1].startswith(b"a\t22\t")
    code, report, _ = run(["eval", "-", "--passes", "1", *model], FASTA)
    assert code == 0 and b'"input": "stdin"' in report


def test_design_reads_a_contigs_pdb_from_stdin(shared: Path, tiny_protein_model: Path):
    pdb = shared / "protein/motif_scaffolding/pdbs/1ycr.pdb.gz"
    contig = ["--contig", "10-20,B19-27,10-20", "--steps", "8", "--checkpoint", str(tiny_protein_model)]
    code, fasta, stderr = run(["design", "-", *contig], pdb.read_bytes())
    assert code == 0, stderr
    header, sequence = fasta.decode().splitlines()
    assert header.startswith(">stdin_design0 ") and "motifs=B19-27@" in header
    assert "FSDLWKLLP" in sequence  # residues 19-27 of chain B: p53's helix


def test_sample_table_reads_its_fix_file_from_stdin(holed, tmp_path: Path):
    model = tmp_path / "model"
    MaskedDiffusionImputer(max_steps=5, device="cpu").fit(holed).save(model)
    partial = tmp_path / "partial.csv"
    holed.head(30).drop(columns="e").to_csv(partial, index=False)
    sample = ["sample", "table", "--checkpoint", str(model), "-o", "-", "--fix-file"]
    code, piped, stderr = run([*sample, "-"], partial.read_bytes())
    assert code == 0 and stderr.strip().endswith("30 rows written to stdout"), stderr
    assert piped == run([*sample, str(partial)], None)[1]
    assert pd.read_csv(io.BytesIO(piped))["x"].notna().all()
    code, _, stderr = run([*sample, "-"], None)
    assert_one_line_error(as_process(code, stderr), "--fix-file is - (stdin), but nothing is piped in")
