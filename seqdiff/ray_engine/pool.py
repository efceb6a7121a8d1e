"""The Ray engine's shared part: the cluster, the checks of a pool, the actor base class and the
in-order run of units over an actor pool (`seqdiff.ray_engine`)."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from seqdiff.errors import SeqdiffError

if TYPE_CHECKING:
    import pyarrow as pa

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


def check_pool(actors: int, device: str, timeout: float, threads: int | None) -> dict[str, Any]:
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


def run_in_order(
    ds: Any,
    fn: type,
    actors: int,
    resources: dict[str, Any],
    timeout: float,
    spans: list[str],
    **kwargs: Any,
) -> Iterator[dict]:
    """Rows of ``ds.map_batches(fn)`` over an actor pool of `Actor` ``fn``, in the order of ``ds``'s
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


class Actor(ABC):
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


def folder_bytes(folder: str | Path) -> dict[str, bytes]:
    """Every file of a model folder, by relative path: what an actor needs to rebuild it anywhere."""
    root = Path(folder)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@contextmanager
def unpacked(files: dict[str, bytes]) -> Iterator[Path]:
    """`folder_bytes` written back into a temporary folder, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="seqdiff-model-") as folder:
        for name, data in files.items():
            path = Path(folder) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        yield Path(folder)
