"""Model bundles: a save/load round trip gives identical logits; a broken bundle gives one line."""

from __future__ import annotations

import json

import pytest
import torch

from seqdiff.core.bundle import CONFIG, WEIGHTS, ModelSpec, build_model, load_bundle, save_bundle
from seqdiff.core.denoiser import DenoiserConfig
from seqdiff.errors import SeqdiffError

SPECS = {
    "md4-rope": ModelSpec(
        DenoiserConfig(vocab_size=7, dim=32, n_layers=2, n_heads=4), mask_id=6, allowed=[0, 1, 2, 3, 4]
    ),
    "genmd4-learned-columns": ModelSpec(
        DenoiserConfig(vocab_size=7, dim=32, n_layers=1, n_heads=2, positions="learned", max_len=4),
        mask_id=6,
        allowed=[[0, 1], [2, 3, 4], [5], [0, 5]],  # one allowed list per position (table columns)
        schedule="genmd4",
        groups=[0, 0, 1, 1, 1, 2, 3],
    ),
    "md4-time-cosine-discrete": ModelSpec(
        DenoiserConfig(vocab_size=7, dim=32, n_layers=1, n_heads=4, time_conditioning=True),
        mask_id=6,
        allowed=[0, 1, 2, 3, 4, 5],
        schedule="polynomial",
        schedule_kwargs={"power": 2.0},
        timesteps=100,
    ),
}


def perturbed(spec: ModelSpec, seed: int):
    """A model whose every parameter (the rates and adaLN's zero init included) is non-default."""
    torch.manual_seed(seed)
    model = build_model(spec)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def inputs(n: int = 4):
    g = torch.Generator().manual_seed(0)
    z = torch.randint(0, 7, (3, n), generator=g)
    valid = torch.ones(3, n, dtype=torch.bool)
    valid[1, -1] = False
    return z, valid, torch.tensor([0.2, 0.5, 0.9])


@pytest.mark.parametrize("name", SPECS)
def test_round_trip_gives_identical_logits(tmp_path, name):
    spec = SPECS[name]
    model = perturbed(spec, 0).eval()
    save_bundle(tmp_path / "m", model, spec, {"modality": "test", "card": {"nelbo": 1.5}})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [CONFIG, WEIGHTS], "no temporary files left"
    loaded, spec2, extra = load_bundle(tmp_path / "m")
    assert spec2 == spec and not loaded.training
    assert extra == {"modality": "test", "card": {"nelbo": 1.5}}
    z, valid, t = inputs()
    with torch.no_grad():
        before = model.log_probs(z, valid, t)
        after = loaded.log_probs(z, valid, t)
        other = perturbed(spec, 1).eval().log_probs(z, valid, t)
    assert torch.equal(before, after)
    assert not torch.allclose(before, other), "the comparison depends on the weights"
    assert torch.equal(loaded.allowed, model.allowed)
    if spec.schedule == "genmd4":
        assert torch.equal(loaded.schedule.rates(), model.schedule.rates())
        assert loaded.schedule.groups.tolist() == spec.groups
    if spec.timesteps:
        assert loaded.timesteps == spec.timesteps and loaded.schedule.power == 2.0


def test_autoregressive_round_trip(tmp_path):
    spec = ModelSpec(
        DenoiserConfig(vocab_size=7, dim=32, n_layers=1, n_heads=2, causal=True),
        mask_id=6,
        allowed=[0, 1, 2, 3, 4],
        kind="autoregressive",
        bos_id=5,
    )
    model = perturbed(spec, 0).eval()
    save_bundle(tmp_path / "ar", model, spec)
    loaded, spec2, extra = load_bundle(tmp_path / "ar")
    assert spec2 == spec and extra == {}
    z, _, _ = inputs()
    with torch.no_grad():
        assert torch.equal(model.denoiser(z), loaded.denoiser(z))


def one_line_error(folder) -> str:
    with pytest.raises(SeqdiffError) as info:
        load_bundle(folder)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message and message
    return message


@pytest.fixture
def bundle(tmp_path):
    spec = SPECS["md4-rope"]
    return save_bundle(tmp_path / "model", perturbed(spec, 0), spec)


def test_missing_folder_or_files(tmp_path, bundle):
    assert "not a seqdiff model" in one_line_error(tmp_path / "nowhere")
    (bundle / WEIGHTS).unlink()
    assert str(bundle) in one_line_error(bundle)
    (bundle / CONFIG).unlink()
    one_line_error(bundle)


def test_missing_config_only(bundle):
    (bundle / CONFIG).unlink()
    assert CONFIG in one_line_error(bundle)


@pytest.mark.parametrize(
    "damage",
    [
        "garbage-weights",
        "truncated-weights",
        "empty-weights",
        "bad-json",
        "no-spec",
        "spec-not-a-dict",
        "unknown-field",
        "wrong-shapes",
        "unknown-schedule",
    ],
)
def test_corrupt_bundle_gives_one_line_error(bundle, damage):
    weights, config = bundle / WEIGHTS, bundle / CONFIG
    spec = json.loads(config.read_text())
    if damage == "garbage-weights":
        weights.write_bytes(b"\x00\x01not a safetensors file" * 10)
    elif damage == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[:200])
    elif damage == "empty-weights":
        weights.write_bytes(b"")
    elif damage == "bad-json":
        config.write_text('{"spec": {')
    elif damage == "no-spec":
        config.write_text(json.dumps({"modality": "protein"}))
    elif damage == "spec-not-a-dict":
        config.write_text(json.dumps({"spec": [1, 2]}))
    elif damage == "unknown-field":
        spec["spec"]["denoiser"]["colour"] = "blue"
        config.write_text(json.dumps(spec))
    elif damage == "wrong-shapes":  # a config that does not match the weights (multi-line error)
        spec["spec"]["denoiser"]["dim"] = 64
        config.write_text(json.dumps(spec))
    elif damage == "unknown-schedule":
        spec["spec"]["schedule"] = "sigmoid"
        config.write_text(json.dumps(spec))
    message = one_line_error(bundle)
    if damage != "unknown-schedule":
        assert message.startswith(str(bundle)), message
