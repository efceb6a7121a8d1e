"""Batch imputation and batch design on Ray Data: ``--engine ray`` of ``seqdiff impute`` and ``design``.

Ray is an optional extra (``pip install 'seqdiff[ray]'``), imported only when this engine runs, so
``import seqdiff`` and the local engine work without it.

Each engine calls one batch function on one unit of work, given the unit's global offset:
`seqdiff.tabular.stream.impute_batch` on rows ``first_row ..`` of a Parquet file, and
`seqdiff.protein.design.design` on jobs ``first_job ..`` of a job list. The sampler's noise is keyed
by global row / job number, and the units are exactly the local engine's batches (rows
``[k * batch_rows, (k + 1) * batch_rows)``, jobs ``[k * batch_size, (k + 1) * batch_size)``), so the
Ray engine writes what the local engine writes at the same seed, whatever the number of actors.

A pool of actors (``map_batches`` with a callable class) loads the model once per actor; the model
travels to them as bundle bytes through Ray's object store, so it need not be on a shared disk. The
driver (this process) receives the units' results in order and writes the output atomically.

Ray being optional, only ``read_rows`` (which needs no Ray) has a runnable example. With
``imputer = MaskedDiffusionImputer.load("runs/adult-imputer")``,
``impute_file_ray("adult_holed.parquet", "adult_imputed.parquet", imputer, actors=4)`` starts a local
cluster, imputes the file with 4 actors and returns the ``StreamReport`` that ``impute_file`` would.
"""

from __future__ import annotations

import os
import pickle
import signal
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from seqdiff.core.decoding import DEFAULT_SETTINGS, SamplerSettings
from seqdiff.errors import SeqdiffError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from seqdiff.protein.design import Design, DesignJob
    from seqdiff.tabular.imputer import MaskedDiffusionImputer
    from seqdiff.tabular.stream import StreamReport

# Half a CPU per actor: an actor asking for a whole CPU would, on a machine with as many cores as
# actors, leave none for Ray Data's own tasks, and the run would wait forever.
ACTOR_CPUS = 0.5

# Ray starts its worker processes at niceness 15 (RAY_worker_niceness), below every ordinary process.
# On a machine whose cores were busy that left each actor about 3% of a core: the actors sat in their
# constructor (importing torch) for minutes, Ray Data listed them as pending and the units waited.
# A local cluster started here runs its workers at the driver's priority.
LOCAL_CLUSTER = {"include_dashboard": False, "_system_config": {"worker_niceness": 0}}

# Seconds without progress (no unit entering or leaving the actor pool) before a run is ended.
DEFAULT_RAY_TIMEOUT = 600.0

INSTALL_HINT = "--engine ray needs Ray: pip install 'seqdiff[ray]' (or 'ray[data]')"


def require_ray() -> ModuleType:
    """The ``ray`` module with Ray Data, or a one-line SeqdiffError saying how to install it
    (:data:`INSTALL_HINT`)."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is a separate extra of ray)
    except ImportError:
        raise SeqdiffError(INSTALL_HINT) from None
    return ray


@contextmanager
def ray_cluster(address: str | None = None) -> Iterator[ModuleType]:
    """Ray, connected to the cluster at ``address`` (None: a new local cluster on this machine, started
    by `start_local_cluster`).

    A Ray already initialised in this process (a test, a notebook) is used as it is and left running;
    a cluster this call started or joined is shut down (left, for a remote one) at the end.

    ``with ray_cluster("auto") as ray:`` joins the cluster this machine belongs to;
    ``ray.cluster_resources()["CPU"]`` then counts its CPUs.
    """
    ray = require_ray()
    started = not ray.is_initialized()
    handlers = {}  # ray.init replaces SIGTERM's handler for good: the process gets its own back
    if threading.current_thread() is threading.main_thread():  # where handlers can be set
        handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    if started:
        try:
            if address is None and not os.environ.get("RAY_ADDRESS"):
                start_local_cluster()
            else:
                ray.init(address=address, include_dashboard=False)
        except ConnectionError as err:
            raise SeqdiffError(f"--ray-address {address}: cannot join the Ray cluster ({err})") from None
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
            for number, handler in handlers.items():
                signal.signal(number, handler)


def start_local_cluster(**options: Any) -> None:
    """``ray.init`` of a new local cluster as the Ray engine runs one: its workers at normal priority.
    ``options`` go to ``ray.init`` (e.g. ``num_cpus=2``).

    Example:
        >>> start_local_cluster(num_cpus=2, log_to_driver=False)  # doctest: +SKIP
    """
    require_ray().init(**LOCAL_CLUSTER, **options)


def _check_pool(actors: int, device: str, timeout: float, threads: int | None) -> dict[str, Any]:
    """map_batches' resource arguments for `actors` actors on `device` (a GPU each for cuda)."""
    if actors < 1:
        raise SeqdiffError("--actors must be at least 1")
    if timeout < 0:
        raise SeqdiffError(f"--ray-timeout {timeout:g}: give seconds, or 0 for no limit")
    if threads is not None and threads < 1:
        raise SeqdiffError(f"--threads {threads}: must be at least 1")
    if device not in ("auto", "cpu", "cuda"):
        raise SeqdiffError(
            f"device {device!r}: with --engine ray choose auto, cpu or cuda (Ray picks the GPU)"
        )
    # Without num_gpus Ray hides every GPU from the actor, so 'auto' runs on CPU there.
    return {"num_cpus": ACTOR_CPUS, "num_gpus": 1 if device == "cuda" else 0}


def _run_in_order(
    ds: Any,
    fn: type,
    actors: int,
    resources: dict[str, Any],
    timeout: float,
    spans: list[str],
    **kwargs: Any,
) -> Iterator[dict]:
    """Rows of ``ds.map_batches(fn)`` over an actor pool of `_Actor` ``fn``, in the order of ``ds``'s
    rows; a unit whose work raised a SeqdiffError raises it here, one line, as the local engine does.

    When no unit enters or leaves the pool for ``timeout`` seconds (0: no limit), Ray Data's own
    no-progress guard stops the run (its actors too), and a SeqdiffError names the unit it waited for
    (``spans``: what each unit holds, e.g. "jobs 1-16").
    """
    import ray.data
    from ray.data.exceptions import ExecutionTimeoutError

    mapped = ds.map_batches(
        fn,
        fn_constructor_kwargs=kwargs,
        batch_size=1,  # one unit of work per call: the units are the local engine's batches
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_format="pyarrow",
        **resources,
    )
    mapped.context.execution_options.preserve_order = True
    mapped.context.execution_no_progress_timeout_s = timeout or -1  # -1: Ray Data's "no limit"
    done = 0
    try:
        for row in mapped.iter_rows():
            if row["error"]:
                raise SeqdiffError(row["error"])
            done += 1
            yield row
    except ExecutionTimeoutError:
        need = f"{ACTOR_CPUS:g} CPU" + (f", {resources['num_gpus']} GPU" if resources["num_gpus"] else "")
        have = ray.cluster_resources()
        raise SeqdiffError(
            f"--engine ray: no progress in {timeout:g} s waiting for unit {done + 1} of {len(spans)} "
            f"({spans[done]}) from {actors} actor(s) needing {need} each (the cluster has "
            f"{have.get('CPU', 0):g} CPU, {have.get('GPU', 0):g} GPU); raise --ray-timeout, or 0 to wait forever"
        ) from None


class _Actor(ABC):
    """A Ray actor's callable: ``run`` on each unit of a batch; the model is loaded by the first unit.

    A SeqdiffError (a record too long for the model, a column the model does not know) becomes the
    unit's ``error``: raised by Ray it would come back wrapped in Ray's traceback, logged twice.
    """

    empty: dict[str, Any] = {}

    def __init__(self, threads: int | None):
        from seqdiff.threads import set_threads

        # One thread unless told: the actors are the parallelism (--actors), each holding a share of a
        # CPU, and several threads per actor would wait for each other's cores.
        set_threads(threads or 1)

    @abstractmethod
    def run(self, unit: dict[str, Any]) -> dict[str, Any]:
        """One unit of work: its output columns."""

    def __call__(self, units: pa.Table) -> dict[str, list]:
        rows = []
        for unit in units.to_pylist():
            try:
                rows.append({**self.run(unit), "error": ""})
            except SeqdiffError as err:
                rows.append({**self.empty, "error": str(err)})
        return {name: [row[name] for row in rows] for name in rows[0]}


def _folder_bytes(folder: str | Path) -> dict[str, bytes]:
    """Every file of a model folder, by relative path: what an actor needs to rebuild it anywhere."""
    root = Path(folder)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@contextmanager
def _unpacked(files: dict[str, bytes]) -> Iterator[Path]:
    """`_folder_bytes` written back into a temporary folder, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="seqdiff-model-") as folder:
        for name, data in files.items():
            path = Path(folder) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        yield Path(folder)


# ----------------------------------------------------------------------------------------------- tables
def read_rows(parquet: pq.ParquetFile, first_row: int, rows: int) -> pa.Table:
    """Rows ``first_row .. first_row + rows - 1`` of a Parquet file, decoding only the row groups that
    hold them (and, inside the first, the rows before ``first_row``).

    Example (row groups of 4 rows; rows 5-10 are in the second, third and fourth):
        >>> import tempfile
        >>> import pyarrow as pa
        >>> import pyarrow.parquet as pq
        >>> path = Path(tempfile.mkdtemp()) / "t.parquet"
        >>> pq.write_table(pa.table({"x": list(range(20))}), path, row_group_size=4)
        >>> read_rows(pq.ParquetFile(path), 5, 6)["x"].to_pylist()
        [5, 6, 7, 8, 9, 10]
    """
    import numpy as np
    import pyarrow as pa

    meta = parquet.metadata
    starts = np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
    end = first_row + rows
    groups = [g for g in range(meta.num_row_groups) if starts[g] < end and starts[g + 1] > first_row]
    pieces, position = [], int(starts[groups[0]])
    for batch in parquet.iter_batches(batch_size=rows, row_groups=groups):
        lo, hi = max(first_row - position, 0), min(end - position, batch.num_rows)
        if hi > lo:
            pieces.append(batch.slice(lo, hi - lo))
        position += batch.num_rows
        if position >= end:
            break
    return pa.Table.from_batches(pieces)


class _ImputeActor(_Actor):
    """The table model, loaded once per actor, imputing units of rows read from the Parquet file."""

    empty = {"ipc": b"", "cells": 0}

    def __init__(self, model: dict[str, bytes], device: str, path: str, n_samples: int, threads: int | None):
        import pyarrow.parquet as pq

        super().__init__(threads)
        self.model, self.device, self.path, self.n_samples = model, device, path, n_samples
        self.parquet = pq.ParquetFile(path)
        self.imputer: MaskedDiffusionImputer | None = None

    def run(self, unit: dict[str, Any]) -> dict[str, Any]:
        import pyarrow as pa

        from seqdiff.tabular.imputer import MaskedDiffusionImputer
        from seqdiff.tabular.stream import impute_batch

        if self.imputer is None:
            with _unpacked(self.model) as folder:
                self.imputer = MaskedDiffusionImputer.load(folder, device=self.device)
            self.imputer.set_params(progress=False)
        table = read_rows(self.parquet, unit["first_row"], unit["rows"])
        imputed, cells = impute_batch(self.imputer, table, unit["first_row"], self.n_samples, self.path)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, imputed.schema) as writer:
            writer.write_table(imputed)
        return {"ipc": sink.getvalue().to_pybytes(), "cells": cells}


def impute_file_ray(
    in_path: str | Path,
    out_path: str | Path,
    imputer: MaskedDiffusionImputer,
    batch_rows: int = 65_536,
    n_samples: int = 1,
    progress: bool | None = False,
    in_place: bool = False,
    *,
    address: str | None = None,
    actors: int = 2,
    timeout: float = DEFAULT_RAY_TIMEOUT,
    threads: int | None = None,
) -> StreamReport:
    """`seqdiff.tabular.stream.impute_file` on a Ray cluster: the same output at the same seed.

    The Parquet file ``in_path`` is cut into units of ``batch_rows`` rows; a pool of ``actors`` actors
    (each on ``imputer.device``: a GPU each for ``"cuda"``) reads and imputes them, and this process
    writes the results in row order to ``out_path``, atomically. Every node must read ``in_path`` at
    the same path (a shared file system). Ray joins ``address`` (None: a new local cluster). Each actor
    computes with ``threads`` threads (None: 1); a run that makes no progress for ``timeout`` seconds
    (0: no limit) ends with a SeqdiffError, writing nothing.

    For example, ``impute_file_ray("holed.parquet", "filled.parquet", imputer, actors=2)`` writes
    ``filled.parquet`` and returns its ``StreamReport`` (rows, imputed_cells, output).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from seqdiff.tabular.stream import PARQUET_SUFFIXES, check_output, write_imputed

    check_output(in_path, out_path, in_place)
    if n_samples < 1 or batch_rows < 1:
        raise SeqdiffError("--samples and --batch-rows must be at least 1")
    if Path(in_path).suffix.lower() not in PARQUET_SUFFIXES:
        raise SeqdiffError(f"{in_path}: --engine ray reads Parquet; convert the file or use --engine local")
    resources = _check_pool(actors, imputer.device, timeout, threads)
    try:
        total = pq.ParquetFile(in_path).metadata.num_rows
    except (pa.ArrowException, OSError) as err:
        raise SeqdiffError(f"{in_path}: not a readable Parquet file ({err})") from None
    units = [{"first_row": s, "rows": min(batch_rows, total - s)} for s in range(0, total, batch_rows)]
    with tempfile.TemporaryDirectory(prefix="seqdiff-imputer-") as folder:
        imputer.save(folder)
        model = _folder_bytes(folder)
    path = str(Path(in_path).resolve())  # absolute: the actors' working directory is not this one
    with ray_cluster(address) as ray:

        def results() -> Iterator[tuple[pa.Table, int]]:
            if not units:
                return
            ds = ray.data.from_items(units, override_num_blocks=len(units))
            kwargs = {"model": model, "device": imputer.device, "path": path, "n_samples": n_samples}
            spans = [f"rows {u['first_row'] + 1}-{u['first_row'] + u['rows']}" for u in units]
            pool = (_ImputeActor, min(actors, len(units)), resources, timeout, spans)
            for row in _run_in_order(ds, *pool, **kwargs, threads=threads):
                yield pa.ipc.open_stream(row["ipc"]).read_all(), row["cells"]

        return write_imputed(results(), in_path, out_path, total, progress)


# --------------------------------------------------------------------------------------------- proteins
class _DesignActor(_Actor):
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
                with _unpacked(self.files) as folder:
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
    resources = _check_pool(actors, device, timeout, threads)
    model = None  # the shipped model, installed with seqdiff on every node
    if checkpoint:
        from seqdiff.protein.model import resolve_checkpoint

        folder = resolve_checkpoint(checkpoint)  # an ESM-2 name becomes a model folder once, here
        if not folder.is_dir():
            raise SeqdiffError(f"{checkpoint}: not a seqdiff model (no such folder)")
        model = _folder_bytes(folder)
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
            for row in _run_in_order(ds, *pool, **kwargs, threads=threads):
                yield from pickle.loads(row["designs"])

    return generate()
