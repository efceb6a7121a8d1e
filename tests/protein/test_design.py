"""seqdiff design: fixed residues are kept byte-identical, contigs respected, seeds reproducible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.motif_problems import load_benchmark_problems
from seqdiff.cli import main
from seqdiff.protein.design import design, plan_from_contig, plan_from_records, template_for
from seqdiff.protein.io import ProteinRecord, read_sequences

ROOT = Path(__file__).resolve().parents[2]
UBIQUITIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"


def run_design(model: Path, jobs: list, **kwargs) -> list:
    return design(jobs, checkpoint=str(model), steps=kwargs.pop("steps", 12), device="cpu", **kwargs)


def test_fix_keeps_fixed_residues_and_designs_the_rest(tiny_protein_model: Path) -> None:
    jobs = plan_from_records([ProteinRecord("ubq", "", UBIQUITIN)], fix="10-25,40-45", n=6)
    designs = run_design(tiny_protein_model, jobs, seed=3)
    assert len(designs) == 6
    for d in designs:
        assert len(d.sequence) == len(UBIQUITIN)
        assert d.sequence[9:25] == UBIQUITIN[9:25] and d.sequence[39:45] == UBIQUITIN[39:45]
        assert "_" not in d.sequence and set(d.sequence) <= set("ACDEFGHIKLMNPQRSTVWY")
        assert (d.unmask_step[d.job.fixed] == -1).all() and (d.unmask_step[~d.job.fixed] >= 0).all()
        assert 0 < d.mean_confidence <= 1 and d.nelbo_per_residue > 0
    # An untrained model designs at random: the designed part differs from the input.
    assert any(d.sequence[:9] != UBIQUITIN[:9] for d in designs)


def test_redesign_and_underscore_templates() -> None:
    assert template_for(UBIQUITIN, redesign="3-5")[:6] == "MQ___K"
    assert template_for("MKT___LLV") == "MKT___LLV"
    with pytest.raises(Exception, match="nothing to design"):
        template_for("MKTLLV")


def test_underscore_masks_are_the_only_designed_positions(tiny_protein_model: Path) -> None:
    jobs = plan_from_records([ProteinRecord("m", "", "MKT___LLV_W")], n=3)
    for d in run_design(tiny_protein_model, jobs, seed=0):
        assert d.sequence[:3] == "MKT" and d.sequence[6:9] == "LLV" and d.sequence[10] == "W"


def test_same_seed_same_designs_other_seed_different(tiny_protein_model: Path) -> None:
    jobs = plan_from_records([ProteinRecord("ubq", "", UBIQUITIN)], fix="1-10", n=4)
    a = [d.sequence for d in run_design(tiny_protein_model, jobs, seed=1)]
    b = [d.sequence for d in run_design(tiny_protein_model, jobs, seed=1, batch_size=3)]
    c = [d.sequence for d in run_design(tiny_protein_model, jobs, seed=2)]
    assert a == b  # keyed noise: the batch size does not change a design
    assert a != c


def test_slice_with_first_job_equals_the_whole_run(tiny_protein_model: Path) -> None:
    # A slice designed with its offset gets the whole run's designs, NELBO included, although its
    # batches (and their padding: 56- and 20-residue inputs) differ: designs do not depend on partitioning.
    jobs = plan_from_records(read_sequences(ROOT / "data" / "examples" / "masked.fasta"), n=3)
    whole = run_design(tiny_protein_model, jobs, seed=2, batch_size=4)
    tail = run_design(tiny_protein_model, jobs[2:], seed=2, first_job=2)
    assert [d.to_record() for d in tail] == [d.to_record() for d in whole[2:]]


def test_contig_designs_keep_every_motif_and_length_range(tiny_protein_model: Path, shared: Path) -> None:
    problems = {p.name: p for p in load_benchmark_problems(shared / "protein/motif_scaffolding/problems.csv")}
    problem = problems["1PRW"]
    jobs = plan_from_contig(problem.contig, problem.pdb_path, problem.length_range, n=8, seed=5)
    lengths = {len(j.template) for j in jobs}
    assert len(lengths) > 1  # segment lengths are sampled per design
    low, high = problem.length_range or (60, 105)
    for d in run_design(tiny_protein_model, jobs, seed=0):
        assert low <= len(d.sequence) <= high
        for name, start in d.job.motifs:
            motif = problem.motif_segments[name]
            assert d.sequence[start : start + len(motif)] == motif
        assert f"contig={d.job.contig}" in d.header()


def test_cli_writes_fasta_with_parameters_and_per_position(tiny_protein_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.fasta"
    src.write_text(f">ubq\n{UBIQUITIN}\n")
    out, table = tmp_path / "out.fasta", tmp_path / "pp.parquet"
    code = main(
        ["design", str(src), "--fix", "5-15", "-n", "3", "--steps", "8", "--seed", "4",
         "--checkpoint", str(tiny_protein_model), "-o", str(out), "--per-position", str(table),
         "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    records = read_sequences(out)
    assert [r.id for r in records] == ["ubq_design0", "ubq_design1", "ubq_design2"]
    for r in records:
        assert r.sequence[4:15] == UBIQUITIN[4:15]
        for key in (
            "source=ubq",
            "fixed=5-15",
            "seed=4",
            "steps=8",
            "grid=cosine",
            "temperature=1.0",
            "nelbo=",
        ):
            assert key in r.description
    pp = pd.read_parquet(table)
    assert len(pp) == 3 * len(UBIQUITIN)
    assert (
        pp.loc[pp.fixed, "unmask_step"].eq(-1).all() and pp.loc[~pp.fixed, "probability"].between(0, 1).all()
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--fix", "5-3"], "reversed"),
        (["--fix", "70-90"], "beyond the end"),
        (["--fix", "a-b"], "not a number"),
        (["--fix", "1-5", "--redesign", "7-9"], "not both"),
        (["--contig", "A16-", "--length", "10-20"], "A16-"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    tiny_protein_model: Path, tmp_path: Path, flags, message
) -> None:
    src = tmp_path / "in.fasta"
    src.write_text(f">ubq\n{UBIQUITIN}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seqdiff.cli",
            "design",
            str(src),
            "--checkpoint",
            str(tiny_protein_model),
            *flags,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_output_may_not_overwrite_input(tiny_protein_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.fasta"
    src.write_text(f">ubq\n{UBIQUITIN}\n")
    before = src.read_bytes()
    assert (
        main(["design", str(src), "--fix", "1-5", "--checkpoint", str(tiny_protein_model), "-o", str(src)])
        == 2
    )
    assert src.read_bytes() == before
