"""``seqdiff score``: our model's NELBO and ESM-2's pseudo-perplexity of each sequence, as a table.

Registered by `seqdiff.cli.main` with ``add_score_parser(subparsers)``.

Example:
    >>> parser = argparse.ArgumentParser(prog="seqdiff")
    >>> p = add_score_parser(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["score", "designs.fasta", "--esm", "esm2_t6_8M_UR50D"]).output
    '-'
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from seqdiff.atomic import atomic_path
from seqdiff.cli.options import add_threads_flag

if TYPE_CHECKING:  # pandas loads slowly: building the CLI parser must not import it
    import pandas as pd


def write_table(table: pd.DataFrame, output: str | Path) -> None:
    """Write ``table`` as Parquet (a name ending in .parquet) or TSV (anything else; ``-`` = stdout),
    atomically.

    Example:
        >>> import pandas as pd
        >>> write_table(pd.DataFrame({"id": ["a"], "esm_pppl": [9.5]}), "-")  # doctest: +NORMALIZE_WHITESPACE
        id	esm_pppl
        a	9.5
    """
    if str(output) == "-":
        table.to_csv(sys.stdout, sep="\t", index=False, float_format="%.6g")
        sys.stdout.flush()
        return
    with atomic_path(output) as tmp:
        if str(output).endswith(".parquet"):
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def cmd_score(args: argparse.Namespace) -> None:
    from seqdiff.protein.esm import score_table
    from seqdiff.protein.io import ensure_not_input

    ensure_not_input(args.output, [args.input])
    table = score_table(
        args.input,
        esm=args.esm,
        checkpoint=args.checkpoint,
        passes=args.passes,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
    )
    write_table(table, args.output)


def add_score_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``score`` subcommand (its ``func`` is set) and return its parser.

    Example:
        >>> add_score_parser(argparse.ArgumentParser().add_subparsers()).prog.endswith("score")
        True
    """
    p = subparsers.add_parser(
        "score",
        help="score protein sequences: NELBO per residue and ESM-2 pseudo-perplexity",
        description="One row per sequence: our model's NELBO per residue (nats; lower is better) and, "
        "with --esm, ESM-2's pseudo-perplexity (each residue masked in turn; lower is better).",
    )
    p.add_argument("input", help="FASTA / A3M file; - for FASTA on stdin")
    p.add_argument(
        "--esm",
        metavar="PATH_OR_NAME",
        help="ESM-2 checkpoint: a fair-esm .pt file, or a model name in the torch hub cache "
        "(e.g. esm2_t6_8M_UR50D); never downloaded",
    )
    p.add_argument("--checkpoint", help="seqdiff model folder (default: the shipped protein model)")
    p.add_argument("--passes", type=int, default=8, help="Monte-Carlo passes per NELBO (default 8)")
    p.add_argument("--batch-size", type=int, default=32, help="masked copies per ESM-2 batch (default 32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "-o", "--output", default="-", help="table: FILE.tsv, FILE.parquet, or - for TSV on stdout (default)"
    )
    add_threads_flag(p)
    p.set_defaults(func=cmd_score)
    return p
