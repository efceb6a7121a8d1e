"""Flags and helpers several commands share: sampling flags, engine flags, a progress bar, messages.

Example:
    >>> p = argparse.ArgumentParser()
    >>> add_engine_flags(p)
    >>> p.parse_args(["--engine", "ray"]).actors
    2
"""

from __future__ import annotations

import argparse
import bz2
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

from seqdiff.core.sampler_settings import SamplerSettings, flag
from seqdiff.errors import SeqdiffError
from seqdiff.ray_engine import DEFAULT_RAY_TIMEOUT

_SHOWN_AS: dict[str, str] = {}  # a temporary file's path -> the name messages give it (see stdin_file)


def shown(text: str) -> str:
    """`text` with the temporary files of `stdin_file` named as the user knows them ("stdin")."""
    for path, name in _SHOWN_AS.items():
        text = text.replace(path, name)
    return text


def say(message: str) -> None:
    """A one-line status message on stderr, prefixed like the errors."""
    print(f"seqdiff: {shown(message)}", file=sys.stderr)


# What stdin holds, from its first bytes: the file name its copy gets, which the readers go by.
_MAGIC = ((b"PAR1", "stdin.parquet"), (b"PK\x03\x04", "stdin.xlsx"))
_PDB_RECORDS = (b"HEADER", b"TITLE", b"REMARK", b"ATOM", b"HETATM", b"MODEL", b"CRYST1", b"COMPND", b"EXPDTA")


def stdin_name(head: bytes) -> str:
    """The name of a file whose first bytes are `head`: Parquet, Excel, FASTA (``>``), PDB, else CSV (the
    CSV reader finds the delimiter); gzip or bzip2 compression is kept as a suffix.

    Example:
        >>> import gzip
        >>> stdin_name(b">1prw\\nMKT"), stdin_name(gzip.compress(b"a,b\\n1,2\\n")), stdin_name(b"ATOM  1 N")
        ('stdin.fasta', 'stdin.csv.gz', 'stdin.pdb')
    """
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    compression, text = "", head
    try:
        if head.startswith(b"\x1f\x8b"):
            compression, text = ".gz", zlib.decompressobj(wbits=47).decompress(head)
        elif head.startswith(b"BZh"):
            compression, text = ".bz2", bz2.BZ2Decompressor().decompress(head)
    except (OSError, ValueError, zlib.error):
        pass  # the reader names what is wrong with it
    text = text.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b">"):
        return "stdin.fasta" + compression
    if text.startswith(_PDB_RECORDS):
        return "stdin.pdb" + compression
    return "stdin.csv" + compression


# The arguments that may be - (stdin), and how messages name them.
STDIN_ARGUMENTS = {"input": "the input", "fix_file": "--fix-file"}


@contextmanager
def stdin_file(args: argparse.Namespace) -> Iterator[None]:
    """A command's input (or ``--fix-file``) ``-``: stdin copied to a temporary file, which the argument
    then names (a table is read more than once: sniffed, sampled for the fit, then streamed). Messages
    call it "stdin"."""
    given = [name for name in STDIN_ARGUMENTS if getattr(args, name, None) == "-"]
    if not given:
        yield
        return
    if getattr(args, "in_place", False):
        raise SeqdiffError("--in-place: the input is stdin; name the output with -o")
    if sys.stdin is None or sys.stdin.isatty():
        raise SeqdiffError(f"{STDIN_ARGUMENTS[given[0]]} is - (stdin), but nothing is piped in")
    with tempfile.TemporaryDirectory(prefix="seqdiff-stdin-") as folder:
        copied = Path(folder) / "stdin"
        with copied.open("wb") as copy:
            shutil.copyfileobj(sys.stdin.buffer, copy, 1 << 20)
        with copied.open("rb") as written:
            path = copied.rename(copied.with_name(stdin_name(written.read(1 << 16))))
        setattr(args, given[0], str(path))
        _SHOWN_AS[str(path)] = "stdin"
        try:
            yield
        except SeqdiffError as err:
            raise SeqdiffError(shown(str(err))) from None
        finally:
            del _SHOWN_AS[str(path)]


@contextmanager
def file_or_stdout(output: str, name: str) -> Iterator[str]:
    """`output`, or for ``-`` a temporary file `name` whose bytes go to stdout once the command has
    succeeded: nothing reaches stdout after an error, as no output file appears after one."""
    if output != "-":
        yield output
        return
    with tempfile.TemporaryDirectory(prefix="seqdiff-") as folder:
        path = Path(folder) / name
        yield str(path)
        stdout = getattr(sys.stdout, "buffer", None)  # a notebook's stdout takes text only
        if stdout is None:
            sys.stdout.write(path.read_bytes().decode("utf-8", errors="replace"))
        else:
            with path.open("rb") as written:
                shutil.copyfileobj(written, stdout)
        sys.stdout.flush()


def progress_bar(desc: str):
    """A tqdm bar on stderr (silent when stderr is not a terminal) and its update callback."""
    from tqdm.auto import tqdm

    bar = tqdm(total=0, desc=desc, unit="step", disable=None, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


# The flags of `add_sampling_flags`, as keyword arguments of `seqdiff.protein.design.design` and of its
# Ray version: the one list of them.
SAMPLING_KEYWORDS = ("checkpoint", *(f.name for f in fields(SamplerSettings)), "seed", "batch_size", "device")


def sampling_options(args: argparse.Namespace) -> dict:
    """The shared sampling flags as keyword arguments of `design` (and of its Ray version)."""
    return {name: getattr(args, name) for name in SAMPLING_KEYWORDS}


def add_sampling_flags(p: argparse.ArgumentParser) -> None:
    """The flags of every protein sampling command, named as `SAMPLING_KEYWORDS` says, plus -n and -o."""
    p.add_argument("-n", type=int, default=1, help="designs per input (default 1)")
    for setting in fields(SamplerSettings):  # the sampler's settings, as declared in the engine
        rule = setting.metadata
        p.add_argument(
            flag(setting.name),
            type=type(setting.default),
            default=setting.default,
            choices=rule["choices"],
            help=f"{rule['help']} (default %(default)s)",
        )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--batch-size", type=int, default=16, help="sequences sampled at once (default %(default)s)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--checkpoint", help="model folder (default: the shipped protein model)")
    p.add_argument("-o", "--output", default="-", help="output FASTA (default stdout)")


def add_engine_flags(p: argparse.ArgumentParser) -> None:
    """``--engine``, ``--ray-address``, ``--actors`` and ``--ray-timeout``, shared by ``seqdiff impute`` and
    ``design``."""
    p.add_argument(
        "--engine", choices=["local", "ray"], default="local", help="where batches run (default local)"
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="Ray cluster to join, e.g. auto or HOST:6379 (default: start a local one)",
    )
    p.add_argument("--actors", type=int, default=2, help="Ray actors, each with its own model (default 2)")
    p.add_argument(
        "--ray-timeout",
        type=float,
        default=DEFAULT_RAY_TIMEOUT,
        metavar="SECONDS",
        help="end the run with an error when no unit of work moves through the actors for this long "
        f"(default {DEFAULT_RAY_TIMEOUT:g}; 0: wait forever)",
    )


def ray_options(args: argparse.Namespace) -> dict:
    """The engine flags (and ``--threads``, for each actor) as keyword arguments of the Ray engine's
    ``design_ray`` and ``impute_file_ray``."""
    return {
        "address": args.ray_address,
        "actors": args.actors,
        "timeout": args.ray_timeout,
        "threads": args.threads,
    }


def add_threads_flag(p: argparse.ArgumentParser) -> None:
    """``--threads``: the CPU threads a command computes with (`seqdiff.threads`); `seqdiff.cli.main`
    applies it around the command."""
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads (torch, BLAS, numba) of this process, and of each Ray actor (default: the cores "
        "other work leaves free, measured as the command starts, at least 1; Ray actors 1 each)",
    )
