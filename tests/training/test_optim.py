"""Muon for the transformer blocks' matrices and AdamW for the rest, as one optimizer."""

from __future__ import annotations

import io

import pytest
import torch

from seqdiff.core.bundle import ModelSpec, build_model
from seqdiff.core.denoiser import DenoiserConfig
from seqdiff.errors import SeqdiffError
from seqdiff.training import optim
from seqdiff.training.config import TrainConfig
from seqdiff.training.lr_schedule import warmup_cosine
from seqdiff.training.optim import MuonAdamW, NativeMuon, build_optimizer, orthogonalise


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    spec = ModelSpec(
        DenoiserConfig(vocab_size=7, dim=16, n_layers=2, n_heads=2), mask_id=6, allowed=list(range(6))
    )
    return build_model(spec)


def one_step(model: torch.nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    x = torch.randint(0, 6, (4, 9), generator=torch.Generator().manual_seed(seed))
    opt.zero_grad()
    model.losses(x, generator=torch.Generator().manual_seed(seed)).objective.sum().backward()
    opt.step()


def test_the_blocks_matrices_go_to_muon_the_rest_to_adamw():
    model = tiny_model()
    opt = build_optimizer(model, "muon", lr=1e-3, betas=(0.9, 0.98), weight_decay=0.03)
    assert isinstance(opt, MuonAdamW) and isinstance(opt.muon, NativeMuon)
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay, muon = ([names[id(p)] for p in g["params"]] for g in opt.param_groups)
    assert sorted(muon) == sorted(
        f"denoiser.blocks.{i}.{m}.weight" for i in range(2) for m in ("qkv", "attn_out", "gate_up", "down")
    )
    assert "denoiser.embed.weight" in decay and "denoiser.head.weight" in decay
    assert all("norm" in n or n.endswith("pos") for n in no_decay), no_decay
    assert [g["weight_decay"] for g in opt.param_groups] == [0.03, 0.0, 0.03]
    assert (
        type(build_optimizer(model, "adamw", lr=1e-3, betas=(0.9, 0.98), weight_decay=0.03))
        is torch.optim.AdamW
    )
    with pytest.raises(ValueError, match="optimizer must be one of adamw, muon"):
        build_optimizer(model, "sgd", lr=1e-3, betas=(0.9, 0.98), weight_decay=0.0)


def test_a_step_moves_every_parameter_and_the_schedule_reaches_muon():
    model = tiny_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = build_optimizer(model, "muon", lr=1e-2, betas=(0.9, 0.98), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, 2, 10, 0.1))
    one_step(model, opt, 0)
    sched.step()
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert len(moved) == len(before)
    assert opt.muon.param_groups[0]["lr"] == pytest.approx(1e-2) == opt.adamw.param_groups[0]["lr"]


def test_a_saved_state_resumes_the_same_steps():
    """Loading replaces each inner optimizer's group dicts: the scheduler must still reach them."""
    model, other = tiny_model(), tiny_model()
    opts = [build_optimizer(m, "muon", lr=1e-2, betas=(0.9, 0.98), weight_decay=0.03) for m in (model, other)]
    scheds = [
        torch.optim.lr_scheduler.LambdaLR(o, lambda step: warmup_cosine(step, 3, 10, 0.1)) for o in opts
    ]
    for step in range(3):
        one_step(model, opts[0], step)
        scheds[0].step()
    # Through a checkpoint's bytes: a state dict in memory shares its tensors with the optimizer.
    saved = io.BytesIO()
    torch.save(
        {"model": model.state_dict(), "opt": opts[0].state_dict(), "sched": scheds[0].state_dict()}, saved
    )
    saved.seek(0)
    checkpoint = torch.load(saved)
    other.load_state_dict(checkpoint["model"])
    opts[1].load_state_dict(checkpoint["opt"])
    scheds[1].load_state_dict(checkpoint["sched"])
    for step in range(3, 7):
        for m, o, s in zip((model, other), opts, scheds, strict=True):
            one_step(m, o, step)
            s.step()
    for (name, a), b in zip(model.named_parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_a_training_configs_unknown_optimizer_is_one_line_before_any_work():
    """`optim.optimizer: sgd` in a YAML config was a ValueError traceback after the data had loaded."""
    with pytest.raises(SeqdiffError, match="optimizer must be one of adamw, muon, not 'sgd'"):
        TrainConfig.from_dict({"optim": {"optimizer": "sgd"}})
    assert TrainConfig.from_dict({"optim": {"optimizer": "muon"}}).optim.optimizer == "muon"


def _muon_steps(opt_class: type, bf16: bool, monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """The blocks' matrices of a tiny model after three Muon steps of `opt_class`."""
    monkeypatch.setattr(optim, "native_bf16", lambda device: bf16)
    model = tiny_model()
    matrices = [p for n, p in model.named_parameters() if ".blocks." in n and p.dim() == 2]
    opt = opt_class(matrices, lr=1e-2, weight_decay=0.03, adjust_lr_fn="match_rms_adamw")
    for step in range(3):
        one_step(model, opt, step)
    return [p.detach().clone() for p in matrices]


def test_native_muon_is_torchs_muon_where_bf16_is_native(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _muon_steps(NativeMuon, True, monkeypatch)
    torchs = _muon_steps(torch.optim.Muon, True, monkeypatch)
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs, strict=True))
    # Elsewhere in float32: not the same bits (bf16 rounds the iteration), but the same direction.
    in_float32 = _muon_steps(NativeMuon, False, monkeypatch)
    start = [p.detach() for n, p in tiny_model().named_parameters() if ".blocks." in n and p.dim() == 2]
    for a, b, s in zip(in_float32, torchs, start, strict=True):
        assert not torch.equal(a, b)
        assert torch.cosine_similarity((a - s).flatten(), (b - s).flatten(), dim=0) > 0.9


def test_orthogonalise_in_float32_flattens_the_singular_values() -> None:
    generator = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(64, 64, generator=generator))
    v, _ = torch.linalg.qr(torch.randn(256, 64, generator=generator))
    update = u @ torch.diag(torch.logspace(-2, 0, 64)) @ v.T  # singular values 0.01 to 1
    for matrix in (update, update.T):
        out = orthogonalise(matrix, torch.float32, (3.4445, -4.7750, 2.0315), 5, 1e-7)
        assert out.dtype == torch.float32 and out.shape == matrix.shape
        singular = torch.linalg.svdvals(out)
        assert singular.min() > 0.5 and singular.max() < 1.5  # Muon's S' ~ U(0.5, 1.5), not U S V^T
