"""The decoding flags of seqdiff design / sample protein: they reach the sampler and the FASTA header,
and bad values are refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqdiff.cli import main
from seqdiff.errors import SeqdiffError
from seqdiff.protein.design import design, plan_from_records
from seqdiff.protein.io import ProteinRecord, read_sequences

UBIQUITIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"

DECODING_FLAGS = {
    "ancestral": ([], ["decoding=ancestral"], ["order_noise", "remask_eta"]),
    "confidence": (["--decoding", "confidence", "--order-noise", "0.5"], ["decoding=confidence", "order_noise=0.5"], ["remask_eta"]),
    "remask": (["--decoding", "remask", "--remask-eta", "0.1"], ["decoding=remask", "remask_eta=0.1"], ["order_noise"]),
    "first-hitting": (["--decoding", "first-hitting"], ["decoding=first-hitting"], ["order_noise", "remask_eta"]),
}  # fmt: skip


def test_decoding_flags_reach_the_designs_and_their_headers(tiny_protein_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.fasta"
    src.write_text(f">ubq\n{UBIQUITIN}\n")
    designed = {}
    for name, (flags, present, absent) in DECODING_FLAGS.items():
        out = tmp_path / f"{name}.fasta"
        argv = ["design", str(src), "--fix", "5-15", "-n", "2", "--steps", "8", "--seed", "4"]
        argv += ["--checkpoint", str(tiny_protein_model), "--device", "cpu", "-o", str(out), *flags]
        assert main(argv) == 0
        records = read_sequences(out)
        for r in records:
            assert r.sequence[4:15] == UBIQUITIN[4:15] and "_" not in r.sequence
            assert all(key in r.description for key in present), r.description
            assert not any(key in r.description for key in absent), r.description
        designed[name] = [r.sequence for r in records]
    # The same seed, another decoding: other designs (the setting reaches the sampler).
    assert len({tuple(sequences) for sequences in designed.values()}) == len(DECODING_FLAGS)


def test_sample_protein_takes_the_decoding_flags(tiny_protein_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "sampled.fasta"
    argv = ["sample", "protein", "--length", "20", "-n", "2", "--steps", "6", "--decoding", "confidence"]
    assert main([*argv, "--checkpoint", str(tiny_protein_model), "--device", "cpu", "-o", str(out)]) == 0
    records = read_sequences(out)
    assert [len(r.sequence) for r in records] == [20, 20]
    assert all("decoding=confidence order_noise=1.0" in r.description for r in records)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--remask-eta", "2"], "--remask-eta must be in [0, 1]"),
        (["--order-noise", "-1"], "--order-noise must be >= 0"),
        (["--top-p", "0"], "--top-p must be in (0, 1]"),
    ],
)
def test_bad_decoding_settings_are_one_line(
    tiny_protein_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags, message
) -> None:
    src = tmp_path / "in.fasta"
    src.write_text(f">ubq\n{UBIQUITIN}\n")
    assert main(["design", str(src), "--fix", "1-5", "--checkpoint", str(tiny_protein_model), *flags]) == 2
    assert capsys.readouterr().err == f"seqdiff: error: {message}\n"


def test_unknown_decoding_is_refused() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["design", "in.fasta", "--fix", "1-5", "--decoding", "greedy"])
    assert exit_.value.code == 2
    jobs = plan_from_records([ProteinRecord("x", "", "MKTAYIAKQR")], fix="1-3")
    with pytest.raises(
        SeqdiffError, match="^--decoding must be one of ancestral, confidence, remask, first-hitting$"
    ):
        design(jobs, decoding="greedy")
