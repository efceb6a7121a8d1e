"""How many CPU threads a command computes with: torch's intra-op pool, BLAS / OpenMP, numba.

``--threads N`` sets it; without it, `default_threads` takes the cores nobody else is using. A parallel
region waits for its slowest thread, so threads on cores that other processes hold run at their pace,
and on a busy machine more threads than free cores is slower than one.

Example:
    >>> with thread_count(1) as n:  # doctest: +SKIP
    ...     torch.get_num_threads()
    1
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from seqdiff.errors import SeqdiffError


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _cpu_times(cpus: set[int]) -> tuple[int, int] | None:
    """(busy, total) clock ticks the kernel has counted on `cpus` since boot (Linux's ``/proc/stat``), or
    None where it cannot be read."""
    busy = total = 0
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                name, *ticks = line.split()
                if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
                    continue
                counts = [int(t) for t in ticks[:8]]  # user nice system idle iowait irq softirq steal
                busy += sum(counts) - counts[3] - counts[4]
                total += sum(counts)
    except (OSError, ValueError, IndexError):
        return None
    return (busy, total) if total else None


def busy_cores(window: float = 0.2) -> float:
    """How many of this process's cores (`usable_cores`) the rest of the machine keeps busy now: their
    busy share over the next `window` seconds, while this process sleeps. Where the kernel does not
    count per-core time (macOS, Windows): the 1-minute load average, or 0 without one.

    Now, not the last minute: a job that has just finished, such as the previous ``seqdiff`` command,
    still holds up the 1-minute load average for a minute or two, and would cost the next command its
    threads on a machine that is quiet again."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    before = _cpu_times(cpus)
    if before is None:
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average (Windows): assume the machine is ours
            return 0.0
    time.sleep(window)
    after = _cpu_times(cpus)
    if after is None or after[1] == before[1]:
        return 0.0
    return len(cpus) * (after[0] - before[0]) / (after[1] - before[1])


def default_threads(cores: int | None = None, busy: float | None = None) -> int:
    """The cores left free by the rest of the machine: cores minus the `busy` ones (default: `busy_cores`),
    to the nearest whole core, at least 1. A quiet machine gets every core; a busy one gets 1 thread,
    which is never slower than threads that must wait for a core.

    Example:
        >>> default_threads(cores=8, busy=0.2), default_threads(cores=8, busy=5.5), default_threads(2, 3.9)
        (8, 3, 1)
    """
    cores = usable_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, int(cores - busy + 0.5)))


def set_threads(n: int | None) -> int:
    """Use ``n`` threads (None: `default_threads`) in torch, in the BLAS / OpenMP libraries loaded in
    this process (threadpoolctl) and in numba; return ``n``. Lasts until set again (see `thread_count`).
    """
    import torch

    n = default_threads() if n is None else n
    if n < 1:
        raise SeqdiffError(f"--threads {n}: must be at least 1")
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        threadpool_limits(n)
    # numba's pool serves parallel=True kernels only (seqdiff has none); it is sized when numba is
    # imported and started by the first such kernel: set the size before, the count once it runs.
    numba = sys.modules.get("numba")
    if numba is None:
        os.environ["NUMBA_NUM_THREADS"] = str(n)
    elif getattr(sys.modules.get("numba.np.ufunc.parallel"), "_is_initialized", False):
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return n


@contextmanager
def thread_count(n: int | None) -> Iterator[int]:
    """`set_threads` for the duration of a block; torch's and the BLAS libraries' counts come back after
    (a command run in-process, by a test or a notebook, leaves its caller's settings alone)."""
    import torch

    before = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        saved = None
    else:
        saved = threadpool_limits(None)  # a snapshot of the current limits, restored on exit
    try:
        yield set_threads(n)
    finally:
        torch.set_num_threads(before)
        if saved is not None:
            saved.restore_original_limits()
