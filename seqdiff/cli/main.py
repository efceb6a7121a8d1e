"""The ``seqdiff`` command: the parser of every subcommand, and ``main``.

Errors the user can fix (bad input, missing files) are ``SeqdiffError``: printed as one line,
exit status 2, never a traceback.

Example:
    >>> build_parser().parse_args(["design", "in.fasta", "--fix", "1-5"]).func.__name__
    'cmd_design'
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from seqdiff.cli.options import add_threads_flag, say, stdin_file
from seqdiff.cli.prepare import add_prepare_parser
from seqdiff.cli.protein import (
    add_adapt_parser,
    add_design_parser,
    add_eval_parser,
    add_sample_protein_parser,
)
from seqdiff.cli.score import add_score_parser
from seqdiff.cli.table import add_impute_parser, add_sample_table_parser
from seqdiff.errors import SeqdiffError

PACKAGE = Path(__file__).resolve().parents[1]


class _SayHandler(logging.Handler):
    """A logged warning as one ``seqdiff: ...`` line on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        say(record.getMessage())


@contextmanager
def one_line_notices() -> Iterator[None]:
    """seqdiff's logged warnings and its own Python warnings as the command's other messages, one
    ``seqdiff: ...`` line each, instead of a logger's bare line or a warning's file, line and source."""
    log, handler = logging.getLogger("seqdiff"), _SayHandler(logging.WARNING)
    show = warnings.showwarning

    def show_ours(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if Path(filename).resolve().is_relative_to(PACKAGE):
            say(str(message))
        else:
            show(message, category, filename, lineno, file, line)

    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False
    with warnings.catch_warnings():
        warnings.showwarning = show_ours
        try:
            yield
        finally:
            log.removeHandler(handler)
            log.propagate = propagate


def cmd_train(args: argparse.Namespace) -> None:
    from seqdiff.training.config import TrainConfig
    from seqdiff.training.train import train

    overrides = list(args.set)
    if args.init:
        overrides.append(f"init={args.init}")
    if args.init_from:
        overrides.append(f"init_from={args.init_from}")
    if args.out:
        overrides.append(f"out={args.out}")
    if args.threads:
        overrides.append(f"trainer.threads={args.threads}")
    cfg = TrainConfig.load(args.config, overrides)
    if cfg.modality == "table":
        raise SeqdiffError(
            "config: modality: table is not trained with 'seqdiff train'; fit a table model with "
            "'seqdiff impute IN -o OUT --save-model M' (or MaskedDiffusionImputer.fit)"
        )
    if cfg.modality != "protein":
        raise SeqdiffError(f"config: unknown modality {cfg.modality!r} (protein)")
    from seqdiff.protein.model import ProteinAdapter

    folder = train(cfg, ProteinAdapter())
    print(f"model saved to {folder}")


def cmd_app(args: argparse.Namespace) -> None:
    from seqdiff.app_launch import launch

    if args.address not in ("127.0.0.1", "localhost", "::1"):
        print(f"seqdiff: serving on {args.address}: anyone who can reach it can use the app", file=sys.stderr)
    code = launch(args.address, args.port, headless=not args.browser)
    if code not in (0, 130):
        raise SeqdiffError(f"the app stopped with status {code}")


def build_parser() -> argparse.ArgumentParser:
    from seqdiff import __version__

    parser = argparse.ArgumentParser(
        prog="seqdiff",
        description="Order-free masked discrete diffusion (MD4 / GenMD4): design proteins around fixed "
        "residues, impute and synthesise tables.",
        epilog="Run 'seqdiff COMMAND -h' for a command's options. Manual: README.md.",
    )
    parser.add_argument("--version", action="version", version=f"seqdiff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train or fine-tune a model from a YAML config")
    p.add_argument("--config", help="YAML config (see pipelines/configs/)")
    p.add_argument("--init", help="start from a model: 'default' or a model folder")
    p.add_argument("--init-from", help="start from ESM-2: a .pt file or a name, e.g. esm2_t6_8M_UR50D")
    p.add_argument("--out", help="output folder (overrides the config's out:)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. trainer.max_steps=100"
    )
    add_threads_flag(p)  # trainer.threads in the config
    p.set_defaults(func=cmd_train)

    add_prepare_parser(sub)
    add_design_parser(sub)
    add_adapt_parser(sub)
    add_eval_parser(sub)
    add_score_parser(sub)
    add_impute_parser(sub)

    kinds = sub.add_parser("sample", help="unconditional samples").add_subparsers(dest="kind", required=True)
    add_sample_protein_parser(kinds)
    add_sample_table_parser(kinds)

    p = sub.add_parser("app", help="start the web app (Streamlit) in your browser")
    p.add_argument("--address", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--browser", action="store_true", help="open a browser window")
    p.set_defaults(func=cmd_app)
    return parser


@contextmanager
def computing_threads(threads: int | None) -> Iterator[int]:
    """`thread_count` for a command, which at a terminal says when other work leaves it fewer threads
    than cores (so that a slow run on a shared machine is not a surprise)."""
    from seqdiff.threads import thread_count, usable_cores

    with thread_count(threads) as n:
        cores = usable_cores()
        if threads is None and n < cores and sys.stderr.isatty():
            say(f"other work keeps {cores - n} of {cores} cores busy: {n} thread(s) (--threads N to choose)")
        yield n


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with one_line_notices(), stdin_file(args):
            if hasattr(args, "threads"):  # a command that computes: its --threads, or the free cores
                with computing_threads(args.threads):
                    args.func(args)
            else:
                args.func(args)
    except SeqdiffError as err:
        print(f"seqdiff: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqdiff: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout left (`| head`): stop quietly, as a killed writer does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flush would fail
        return 128 + signal.SIGPIPE
    return 0
