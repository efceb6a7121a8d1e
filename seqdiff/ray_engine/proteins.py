"""``seqdiff design --engine ray``: design jobs run by a pool of actors, yielded in job order."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from seqdiff.core.sampler_settings import DEFAULT_SETTINGS, SamplerSettings
from seqdiff.errors import SeqdiffError
from seqdiff.ray_engine.pool import (
    DEFAULT_RAY_TIMEOUT,
    Actor,
    check_pool,
    folder_bytes,
    ray_cluster,
    require_ray,
    run_in_order,
    unpacked,
)

if TYPE_CHECKING:
    from seqdiff.protein.design import Design, DesignJob


class _DesignActor(Actor):
    """The protein model, loaded once per actor, designing units of jobs with `design`."""

    empty = {"designs": b""}

    def __init__(
        self, model: dict[str, bytes] | None, device: str, settings: dict[str, Any], threads: int | None
    ):
        super().__init__(threads)
        self.files, self.device, self.settings = model, device, settings
        self.model: Any = None

    def run(self, unit: dict[str, Any]) -> dict[str, Any]:
        from seqdiff.core.device import resolve_device
        from seqdiff.protein.design import design
        from seqdiff.protein.model import load_protein_model

        if self.model is None:
            if self.files is None:
                self.model, _ = load_protein_model(None, resolve_device(self.device))
            else:
                with unpacked(self.files) as folder:
                    self.model, _ = load_protein_model(str(folder), resolve_device(self.device))
        jobs = pickle.loads(unit["jobs"])
        designs = design(
            jobs,
            model=self.model,
            batch_size=len(jobs),
            device=self.device,
            first_job=unit["first_job"],
            **self.settings,
        )
        return {"designs": pickle.dumps(designs)}


def design_ray(
    jobs: list[DesignJob],
    checkpoint: str | None = None,
    steps: int = DEFAULT_SETTINGS.steps,
    grid: str = DEFAULT_SETTINGS.grid,
    temperature: float = DEFAULT_SETTINGS.temperature,
    top_p: float = DEFAULT_SETTINGS.top_p,
    seed: int = 0,
    batch_size: int = 16,
    device: str = "auto",
    decoding: str = DEFAULT_SETTINGS.decoding,
    order_noise: float = DEFAULT_SETTINGS.order_noise,
    remask_eta: float = DEFAULT_SETTINGS.remask_eta,
    prior: Callable[[DesignJob], Any] | None = None,
    *,
    address: str | None = None,
    actors: int = 2,
    timeout: float = DEFAULT_RAY_TIMEOUT,
    threads: int | None = None,
) -> Iterator[Design]:
    """`seqdiff.protein.design.design` on a Ray cluster: the same designs, yielded in job order.

    Jobs go to a pool of ``actors`` actors ``batch_size`` at a time (a GPU each for
    ``device="cuda"``); each unit is designed with its offset as ``first_job``, so the designs equal
    the local engine's at the same seed. The model (``checkpoint``, default the shipped one) is sent
    to the actors. Settings are checked here, before Ray starts; designs arrive as units finish. Each
    actor computes with ``threads`` threads (None: 1); a run that makes no progress for ``timeout``
    seconds (0: no limit) raises a SeqdiffError. ``prior`` (e.g. a family's `ProfileGuide`) is sent
    to the actors with the settings.

    For example, with ``jobs = plan_from_records(read_sequences("many.fasta"), fix="1-20", n=4)``,
    ``write_fasta([d.to_record() for d in design_ray(jobs, steps=50, actors=8)], "out.fasta")``
    designs on 8 actors and writes what ``design(jobs, steps=50)`` would.
    """
    from seqdiff.protein.design import check_sampling

    require_ray()
    settings = SamplerSettings(steps, grid, temperature, top_p, decoding, order_noise, remask_eta)
    check_sampling(settings)
    if batch_size < 1:
        raise SeqdiffError("--batch-size must be at least 1")
    resources = check_pool(actors, device, timeout, threads)
    model = None  # the shipped model, installed with seqdiff on every node
    if checkpoint:
        from seqdiff.protein.model import resolve_checkpoint

        folder = resolve_checkpoint(checkpoint)  # an ESM-2 name becomes a model folder once, here
        if not folder.is_dir():
            raise SeqdiffError(f"{checkpoint}: not a seqdiff model (no such folder)")
        model = folder_bytes(folder)
    # The checkpoint names the model in each design's header.
    settings = {"checkpoint": checkpoint, **asdict(settings), "seed": seed, "prior": prior}
    units = [
        {"first_job": s, "jobs": pickle.dumps(jobs[s : s + batch_size])}
        for s in range(0, len(jobs), batch_size)
    ]

    def generate() -> Iterator[Design]:
        if not units:
            return
        with ray_cluster(address) as ray:
            ds = ray.data.from_items(units, override_num_blocks=len(units))
            kwargs = {"model": model, "device": device, "settings": settings}
            spans = [
                f"jobs {s + 1}-{min(s + batch_size, len(jobs))}" for s in range(0, len(jobs), batch_size)
            ]
            pool = (_DesignActor, min(actors, len(units)), resources, timeout, spans)
            for row in run_in_order(ds, *pool, **kwargs, threads=threads):
                yield from pickle.loads(row["designs"])

    return generate()
