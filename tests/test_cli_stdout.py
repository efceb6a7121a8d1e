"""``-o -``: the table commands write CSV to stdout, as `seqdiff design` writes FASTA and `seqdiff score`
a TSV, so their output pipes into the next tool; and every command stops quietly when that tool stops
reading (``| head``)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqdiff.cli import main
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from tests.test_bad_input import assert_one_line_error

TINY = {"dim": 16, "n_layers": 1, "n_heads": 2, "max_steps": 5, "device": "cpu"}


def table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=rows).round(3), "c": rng.choice(["a", "b"], rows)})
    df.loc[rng.random(rows) < 0.2, "x"] = np.nan
    return df


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("stdout")
    src = folder / "in.tsv"
    table(300).to_csv(src, sep="\t", index=False)
    MaskedDiffusionImputer(**TINY).fit(table(300)).save(folder / "model")
    return src, folder / "model"


def run(*args: str) -> tuple[int, bytes, str]:
    """The CLI in this process, with a stdout that takes bytes as a terminal's or a pipe's does."""
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    out.flush()
    return code, out.buffer.getvalue(), err.getvalue()


def test_impute_writes_csv_to_stdout_in_the_inputs_dialect(files, tmp_path: Path):
    src, model = files
    code, stdout, stderr = run("impute", str(src), "--checkpoint", str(model), "-o", "-")
    assert code == 0 and stderr.strip().endswith("-> stdout"), stderr
    named = tmp_path / "out.tsv"
    assert run("impute", str(src), "--checkpoint", str(model), "-o", str(named))[0] == 0
    assert stdout == named.read_bytes() and stdout.startswith(b'"x"\t"c"\n')
    assert not list(tmp_path.glob("seqdiff-*"))  # the temporary copy is gone


def test_nothing_reaches_stdout_after_an_error(files, tmp_path: Path):
    src, model = files
    bad = tmp_path / "bad.csv"
    table(20).rename(columns={"x": "y"}).to_csv(bad, index=False)
    code, stdout, stderr = run("impute", str(bad), "--checkpoint", str(model), "-o", "-")
    assert code == 2 and stdout == b"" and "column 'x' is missing" in stderr
    code, _, stderr = run("impute", str(src), "-o", "-", "--samples", "2", "--keep-draws")
    assert_one_line_error(subprocess.CompletedProcess([], code, "", stderr), "--keep-draws writes the draws")


def test_sample_table_writes_csv_to_stdout(files):
    _, model = files
    code, stdout, stderr = run("sample", "table", "--checkpoint", str(model), "--rows", "4", "-o", "-")
    assert code == 0 and "4 rows written to stdout" in stderr
    sampled = pd.read_csv(io.BytesIO(stdout))
    assert list(sampled.columns) == ["x", "c"] and len(sampled) == 4 and sampled.notna().all().all()


def test_a_reader_that_stops_early_stops_the_command_quietly(files, tmp_path: Path):
    """`| head -1` closed the pipe: a BrokenPipeError traceback after the work. Now exit status 141 (a
    writer killed by SIGPIPE), nothing on stderr but the command's own lines."""
    _, model = files
    big = tmp_path / "big.csv"
    table(20_000).to_csv(big, index=False)  # more than a pipe holds
    command = [sys.executable, "-m", "seqdiff.cli", "impute", str(big), "--checkpoint", str(model), "-o", "-"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout.readline() == b'"x","c"\n'
        process.stdout.close()
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=300) == 141
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
