"""ESM-2 integration, offline: a tiny random ESM-2 saved in fair-esm's checkpoint layout stands in
for the real weights (loading, logits, pseudo-perplexity, scoring, ranking, training from it)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import esm
import numpy as np
import pandas as pd
import pytest
import torch

import seqdiff.training.train as training
from seqdiff.cli import main
from seqdiff.cli.score import add_score_parser
from seqdiff.core.bundle import build_model, load_bundle, save_bundle
from seqdiff.errors import SeqdiffError
from seqdiff.protein import alphabet
from seqdiff.protein.design import Design, DesignJob, design
from seqdiff.protein.esm import (
    ESMDenoiser,
    find_esm_checkpoint,
    init_from_esm,
    load_esm_checkpoint,
    load_esm_for_scoring,
    pseudo_perplexity,
    rank_designs,
)
from seqdiff.protein.io import read_sequences
from seqdiff.protein.model import ProteinAdapter, load_protein_model, protein_spec
from seqdiff.training.config import ModelConfig, TrainConfig
from seqdiff.training.train import fit_module, train

SEQUENCES = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHXMLE", "ACDEFGHIKLMNPQRSTVWY"]  # X: non-standard
ESM_ALPHABET = esm.data.Alphabet.from_architecture("ESM-1b")


def fair_esm_checkpoint(model: esm.model.esm2.ESM2, layout: str = "cfg") -> dict:
    """``model`` as fair-esm's released ESM-2 files hold it: fairseq weight names and the training
    arguments as an ``argparse.Namespace`` under ``cfg["model"]`` (or, in older files, ``args``).
    ``layout="upgraded"`` keeps fair-esm's own ``ESM2`` weight names."""
    state = {}
    for name, tensor in model.state_dict().items():
        if name.startswith("contact_head."):
            continue  # released in a separate -contact-regression.pt file
        if layout != "upgraded":
            name = ("encoder." if name.startswith("lm_head.") else "encoder.sentence_encoder.") + name
        state[name] = tensor.clone()
    args = argparse.Namespace(
        _name="esm2",
        encoder_layers=model.num_layers,
        encoder_embed_dim=model.embed_dim,
        encoder_attention_heads=model.attention_heads,
        token_dropout=model.token_dropout,
        max_positions=1024,
    )
    if layout == "args":
        return {"model": state, "args": args}
    return {"model": state, "cfg": {"model": args, "common": {"seed": 1}}}


@pytest.fixture(scope="module")
def tiny_esm(tmp_path_factory: pytest.TempPathFactory) -> tuple[esm.model.esm2.ESM2, Path]:
    """A random 2-layer ESM-2 and its checkpoint file."""
    torch.manual_seed(0)
    model = esm.model.esm2.ESM2(
        num_layers=2, embed_dim=64, attention_heads=4, alphabet=ESM_ALPHABET, token_dropout=True
    ).eval()
    path = tmp_path_factory.mktemp("esm") / "esm2_t2_tiny.pt"
    torch.save(fair_esm_checkpoint(model), path)
    return model, path


def esm_logits(model: esm.model.esm2.ESM2, sequences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """fair-esm's own framing (<cls> ... <eos>, padded) and logits; '_' is a masked residue."""
    _, _, tokens = ESM_ALPHABET.get_batch_converter()(
        [(str(i), s.replace("_", "<mask>")) for i, s in enumerate(sequences)]
    )
    with torch.no_grad():
        return tokens, model(tokens)["logits"]


def test_the_fake_checkpoint_is_one_fair_esm_reads(tiny_esm) -> None:
    model, path = tiny_esm
    with pytest.warns(UserWarning, match="Regression weights not found"):
        loaded, _ = esm.pretrained.load_model_and_alphabet_core(
            path.stem, torch.load(path, weights_only=False)
        )
    for name, tensor in model.state_dict().items():
        if not name.startswith("contact_head."):
            assert torch.equal(loaded.state_dict()[name], tensor), name


@pytest.mark.parametrize("layout", ["cfg", "args", "upgraded"])
def test_load_esm_checkpoint_reads_every_layout(tiny_esm, tmp_path: Path, layout: str) -> None:
    model, _ = tiny_esm
    path = tmp_path / "esm2_t2_tiny.pt"
    torch.save(fair_esm_checkpoint(model, layout), path)
    state, arch = load_esm_checkpoint(path)
    assert arch == {"n_layers": 2, "dim": 64, "n_heads": 4}
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("contact_head.")}
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], v) for k, v in expected.items())


def test_init_from_esm_gives_esm_logits_on_a_padded_batch(tiny_esm) -> None:
    model, path = tiny_esm
    model_cfg, weights = init_from_esm(ModelConfig(dim=32, n_layers=1, n_heads=2), str(path))
    assert (model_cfg.architecture, model_cfg.n_layers, model_cfg.dim, model_cfg.n_heads) == (
        "esm2",
        2,
        64,
        4,
    )
    ours = build_model(protein_spec(model_cfg, max_len=64)).eval()
    ours.denoiser.load_state_dict(weights)
    # Masked positions included: token dropout must match ESM-2's too.
    batch = ["MKTAYIAKQR", "GS_ME", "ACDEF__IKLMNPQRSTVWY"]
    ids, valid = alphabet.encode_batch(batch)
    with torch.no_grad():
        logits = ours.denoiser(ids, valid)
    _, reference = esm_logits(model, batch)
    for row, seq in enumerate(batch):
        assert torch.allclose(logits[row, : len(seq)], reference[row, 1 : len(seq) + 1], atol=1e-5)


def test_pseudo_perplexity_equals_masking_one_position_at_a_time(tiny_esm) -> None:
    model, path = tiny_esm
    seq = SEQUENCES[0]
    tokens, _ = esm_logits(model, [seq])
    log_p = []
    for i in range(1, len(seq) + 1):
        masked = tokens.clone()
        masked[0, i] = ESM_ALPHABET.mask_idx
        with torch.no_grad():
            logits = model(masked)["logits"][0, i]
        log_p.append(torch.log_softmax(logits, -1)[tokens[0, i]].item())
    expected = math.exp(-np.mean(log_p))
    pppl = pseudo_perplexity(load_esm_for_scoring(path), [seq, "MK"], batch_size=5)
    assert pppl[0] == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(pppl[1])


def test_missing_checkpoint_is_one_line_naming_the_paths_tried(tmp_path: Path, monkeypatch, tiny_esm) -> None:
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    cached = hub / "checkpoints" / "esm2_t6_8M_UR50D.pt"
    with pytest.raises(SeqdiffError) as err:
        find_esm_checkpoint("esm2_t6_8M_UR50D")
    message = str(err.value)
    assert "\n" not in message and str(cached) in message
    assert "https://dl.fbaipublicfiles.com/fair-esm/models/esm2_t6_8M_UR50D.pt" in message
    with pytest.raises(SeqdiffError) as err:
        find_esm_checkpoint(tmp_path / "nowhere" / "esm2_t6_8M_UR50D.pt")
    assert "\n" not in str(err.value)
    assert str(tmp_path / "nowhere" / "esm2_t6_8M_UR50D.pt") in str(err.value) and str(cached) in str(
        err.value
    )
    # A name is found in the hub cache, where esm.pretrained downloads to.
    cached = hub / "checkpoints" / "esm2_t2_tiny.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(tiny_esm[1].read_bytes())
    assert find_esm_checkpoint("esm2_t2_tiny") == cached


def test_a_checkpoint_holding_other_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "esm2_evil.pt"
    torch.save({"model": {}, "cfg": {"model": Path("x")}}, path)
    with pytest.raises(SeqdiffError, match="refusing to load: it contains pathlib"):
        load_esm_checkpoint(path)


def test_score_cli_writes_nelbo_and_esm_side_by_side(
    tiny_esm, tiny_protein_model: Path, tmp_path: Path, capsys
) -> None:
    _, esm_path = tiny_esm
    fasta = tmp_path / "seqs.fasta"
    fasta.write_text("".join(f">s{i} note\n{s}\n" for i, s in enumerate(SEQUENCES)))
    parser = argparse.ArgumentParser(prog="seqdiff")
    add_score_parser(parser.add_subparsers(dest="command"))
    expected = pseudo_perplexity(load_esm_for_scoring(esm_path), SEQUENCES)
    common = [str(fasta), "--esm", str(esm_path), "--checkpoint", str(tiny_protein_model), "--device", "cpu"]
    tables = {}
    for output in ["scores.tsv", "scores.parquet", "-"]:
        target = output if output == "-" else str(tmp_path / output)
        # 64 passes: the range check below is about the mean, not one or two Monte-Carlo draws.
        args = parser.parse_args(["score", *common, "--passes", "64", "-o", target])
        args.func(args)
        if output.endswith(".parquet"):
            tables[output] = pd.read_parquet(target)
        elif output == "-":
            tables[output] = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out), sep="\t")
        else:
            tables[output] = pd.read_csv(target, sep="\t")
    for table in tables.values():
        assert table.columns.tolist() == ["id", "length", "nelbo_per_residue", "esm_pppl", "sequence"]
        assert table["id"].tolist() == ["s0", "s1", "s2"] and table["sequence"].tolist() == SEQUENCES
        assert np.allclose(table["esm_pppl"], expected, rtol=1e-5)
        # An untrained model is about uniform over 20 amino acids: ln 20 = 3.0 nats per residue
        # (X is missing data, left out, not an infinite NELBO).
        assert ((table["nelbo_per_residue"] > 2.5) & (table["nelbo_per_residue"] < 4)).all()
    assert not list(tmp_path.glob(".*.tmp"))


def test_rank_designs_by_esm_orders_and_records_the_score(tiny_esm) -> None:
    _, esm_path = tiny_esm
    shared_params = {"seed": 0}
    designs = [
        Design(
            DesignJob("x", i, "_" * len(s)),
            s,
            3.0 - i,
            0.5,
            np.zeros(len(s)),
            np.zeros(len(s)),
            np.zeros(len(s), int),
            shared_params,
        )
        for i, s in enumerate(SEQUENCES)
    ]
    ranked = rank_designs(designs, "esm", str(esm_path), device="cpu")
    scores = [float(d.params["esm_pppl"]) for d in ranked]
    assert sorted(ranked, key=lambda d: d.job.index) == designs and scores == sorted(scores)
    assert all(f"esm_pppl={d.params['esm_pppl']}" in d.header() for d in ranked)
    assert shared_params == {"seed": 0}
    assert [d.job.index for d in rank_designs(designs, "nelbo", None)] == [2, 1, 0]
    with pytest.raises(SeqdiffError, match="--esm"):
        rank_designs(designs, "esm", None)


def test_one_training_step_from_esm_exports_an_esm_bundle(tiny_esm, tmp_path: Path, monkeypatch) -> None:
    model, esm_path = tiny_esm
    fasta = tmp_path / "train.fasta"
    fasta.write_text("".join(f">s{i}\n{s * 2}\n" for i, s in enumerate(SEQUENCES * 3)))
    cfg = TrainConfig.from_dict(
        {
            "modality": "protein",
            "init_from": str(esm_path),
            "data": {"train": str(fasta), "valid": str(fasta), "max_len": 64, "max_tokens": 512},
            "model": {"schedule": "linear"},  # MD4
            "optim": {"warmup_steps": 1, "total_steps": 1},
            "trainer": {"max_steps": 1, "val_every_steps": 1, "progress_bar": False, "threads": 2},
            "out": str(tmp_path / "run"),
        }
    )
    modules = []

    def fit_and_keep(module, *args, **kwargs):
        modules.append(module)
        return fit_module(module, *args, **kwargs)

    monkeypatch.setattr(training, "fit_module", fit_and_keep)
    folder = train(cfg, ProteinAdapter())
    bundle, spec, extra = load_bundle(folder)
    assert (spec.denoiser.architecture, spec.denoiser.n_layers, spec.denoiser.dim) == ("esm2", 2, 64)
    assert extra["training"]["config"]["model"]["architecture"] == "esm2"
    ids, valid = alphabet.encode_batch(["MKTAYIAKQR", "GS_ME"])
    with torch.no_grad():
        logits = bundle.denoiser(ids, valid)
        # The bundle holds the trained module's EMA weights, which is what gets exported.
        assert torch.allclose(logits, modules[0].ema.eval().denoiser(ids, valid), atol=1e-6)
        assert torch.isfinite(bundle.losses(ids, valid).nelbo).all()
    # The optimiser step moved the weights away from ESM-2's.
    _, reference = esm_logits(model, ["MKTAYIAKQR"])
    assert not torch.allclose(logits[0], reference[0, 1:11], atol=1e-4)


def test_esm2_architecture_from_scratch_designs_from_a_fully_masked_start(tmp_path: Path) -> None:
    spec = protein_spec(ModelConfig(architecture="esm2", dim=32, n_layers=1, n_heads=2), max_len=64)
    torch.manual_seed(0)
    save_bundle(tmp_path / "m", build_model(spec), spec, {"modality": "protein", "alphabet": "ESM-1b"})
    model, _ = load_protein_model(tmp_path / "m")
    assert isinstance(model.denoiser, ESMDenoiser)
    # BERT-style init: an untrained model predicts about uniformly.
    ids, valid = alphabet.encode_batch(["MKT__YIAKQR", "__________"])
    with torch.no_grad():
        log_p = model.log_probs(ids, valid)[..., alphabet.DESIGNABLE]
    assert torch.allclose(log_p, torch.full_like(log_p, -math.log(20)), atol=0.5)
    designs = design([DesignJob("x", i, "________") for i in range(2)], model=model, steps=4, device="cpu")
    assert all(len(d.sequence) == 8 and np.isfinite(d.nelbo_per_residue) for d in designs)
    with pytest.raises(SeqdiffError, match="does not support an autoregressive"):
        build_model(protein_spec(ModelConfig(architecture="esm2", kind="autoregressive")))


def test_esm2_checkpoint_designs_directly_and_is_converted_once(
    tiny_esm, tmp_path: Path, private_cache
) -> None:
    model, path = tiny_esm
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">x\nMKTAYIAKQRQISFVKSHFSRQ\n")
    out = tmp_path / "designs.fasta"
    args = ["design", str(fasta), "--fix", "1-5", "-n", "2", "--steps", "4", "--checkpoint", str(path)]
    assert main([*args, "-o", str(out)]) == 0
    records = read_sequences(out)
    assert [r.sequence[:5] for r in records] == ["MKTAY", "MKTAY"]
    assert f"model={path}" in records[0].description
    converted = list((private_cache / "esm").iterdir())
    assert [c.name.split("-")[0] for c in converted] == ["esm2_t2_tiny"]
    # The converted model's denoiser is ESM-2 with the checkpoint's weights: same logits as fair-esm.
    diffusion, extra = load_protein_model(path)
    assert extra["esm2"] == "esm2_t2_tiny" and isinstance(diffusion.denoiser, ESMDenoiser)
    ids, valid = alphabet.encode_batch(["MKTAYIAKQR"])
    with torch.no_grad():
        ours = diffusion.denoiser(ids, valid)
    _, reference = esm_logits(model, ["MKTAYIAKQR"])
    assert torch.allclose(ours[0], reference[0, 1:11], atol=1e-4)
    stamp = converted[0].stat().st_mtime_ns
    assert main([*args, "-o", str(tmp_path / "again.fasta")]) == 0
    assert converted[0].stat().st_mtime_ns == stamp and len(list((private_cache / "esm").iterdir())) == 1
