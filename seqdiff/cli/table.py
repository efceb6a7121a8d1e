"""Table commands: ``seqdiff impute`` and ``seqdiff sample table``.

`seqdiff.cli.main` wires them in with `add_impute_parser` and `add_sample_table_parser`; each sets ``func``
on its parser, called with the parsed arguments. Errors are SeqdiffErrors (one line, exit status 2).

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="seqdiff")
    >>> _ = add_impute_parser(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["impute", "in.parquet", "-o", "out.parquet"]).samples is None
    True
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqdiff.cli.options import add_engine_flags, add_threads_flag, file_or_stdout, ray_options, say
from seqdiff.errors import SeqdiffError
from seqdiff.tabular.encoding import NUMERIC_POINTS
from seqdiff.tabular.files import file_format
from seqdiff.tabular.read_options import add_read_flags, read_options
from seqdiff.tabular.settings import add_fit_flags, fit_flags_given, given_fit_settings
from seqdiff.tabular.writing import output_format


def cmd_impute(args: argparse.Namespace) -> None:
    """Fill the missing cells of a Parquet, CSV or Excel file with a saved model or one fitted on the file."""
    output = args.output or (args.input if args.in_place else None)
    if output is None:
        raise SeqdiffError("impute: give an output with -o OUT.parquet or -o OUT.csv (or --in-place)")
    if output == "-" and args.keep_draws:
        raise SeqdiffError("--keep-draws writes the draws beside the output: name it (-o OUT.csv), not -")
    # A missing input or an output of no format is one line before torch loads (seconds), not after.
    file_format(Path(args.input))
    with file_or_stdout(output, _stdout_name(args.input)) as path:
        _impute(args, path)


def _stdout_name(input_path: str) -> str:
    """The CSV a ``-o -`` writes to stdout: in a CSV or TSV input's dialect, else comma-separated."""
    return "stdout.tsv" if file_format(Path(input_path)) == "tsv" else "stdout.csv"


def _impute(args: argparse.Namespace, output: str) -> None:
    output_format(output)
    from seqdiff.tabular.stream import impute_file
    from seqdiff.tabular.task import impute_table

    # With --engine ray, --device is where the actors run; this process only loads or fits the model,
    # and a cluster's head node often has no GPU.
    here, engine = args.device, impute_file
    if args.engine == "ray":
        from seqdiff.ray_engine import check_ray_input, require_ray

        require_ray()  # before a fit that may take minutes
        check_ray_input(args.input)
        here, engine = "auto", _ray_engine(args)
    if args.checkpoint:
        given = [
            f for f in ["--categorical", "--numeric", "--save-model"] if getattr(args, _dest(f)) is not None
        ]
        fit_only = given + fit_flags_given(args)
        if fit_only:
            raise SeqdiffError(f"{', '.join(fit_only)}: only when fitting, not with --checkpoint")
    report, _ = impute_table(
        args.input,
        output,
        checkpoint=args.checkpoint,
        fit=given_fit_settings(args),
        categorical=args.categorical or (),
        numeric=args.numeric or (),
        save_model=args.save_model,
        samples=args.samples,
        keep_draws=args.keep_draws,
        sampling_steps=args.sampling_steps,
        numeric_point=args.numeric_point,
        seed=args.seed,
        device=here,
        batch_rows=args.batch_rows,
        in_place=args.in_place,
        engine=engine,
        say=say,
        read_options=read_options(args),
    )
    if report.blank_rows:
        say(f"{report.blank_rows:,} blank row(s), no cell filled: left blank (nothing to impute them from)")
    written = "stdout" if args.output == "-" else report.output
    say(f"imputed {report.imputed_cells:,} cells in {report.rows:,} rows -> {written}")
    if report.draws:
        say(f"{len(report.draws)} draws, each a completed table -> {report.draws[0]} .. {report.draws[-1]}")


def _ray_engine(args: argparse.Namespace) -> Callable[..., Any]:
    """`impute_file_ray` with the Ray flags, its actors on --device."""
    from seqdiff.ray_engine import impute_file_ray

    def engine(in_path: str, out_path: str, imputer: Any, read_options: Any, **options: Any) -> Any:
        imputer.set_params(device=args.device)  # and no read_options: the Ray engine reads Parquet
        return impute_file_ray(in_path, out_path, imputer, **options, **ray_options(args))

    return engine


def add_sampling_steps_flag(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--sampling-steps``: the sampler steps of each row's joint draw."""
    p.add_argument(
        "--sampling-steps",
        type=int,
        metavar="S",
        help=prefix + "sampler steps per row of a draw (default: one per cell to fill, each drawn given "
        "the cells before it; fewer is faster on wide tables, and draws several cells at once, "
        "independently)",
    )


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def add_impute_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``seqdiff impute`` on the top-level subparsers; returns its parser.

    Example:
        >>> parser = argparse.ArgumentParser(prog="seqdiff")
        >>> p = add_impute_parser(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["impute", "a.csv", "-o", "b.parquet", "--samples", "5"]).func.__name__
        'cmd_impute'
    """
    p = subparsers.add_parser(
        "impute",
        help="fill the missing cells of a table (Parquet, CSV or Excel)",
        description="Fill the missing cells of a Parquet, CSV or Excel table with a masked-diffusion model: "
        "a saved one (--checkpoint) or one fitted on the observed cells of IN. Observed cells are kept unchanged; "
        "the output (Parquet, CSV or Excel, as -o names it) has the input's columns and types.",
    )
    p.add_argument(
        "input",
        help="table to impute (.parquet, .pq, .csv, .tsv, .txt, .xlsx, or a Parquet dataset's folder); - reads "
        "it from stdin",
    )
    p.add_argument(
        "-o",
        "--output",
        help="output file: .parquet or .pq, .csv, .tsv or .txt (optionally .gz; in a CSV input's "
        "delimiter, decimal mark and encoding), or .xlsx; - for CSV on stdout",
    )
    add_read_flags(p)
    p.add_argument("--checkpoint", help="table model folder (default: fit a model on IN's observed cells)")
    p.add_argument("--save-model", metavar="PATH", help="save the model fitted on IN to this folder")
    p.add_argument(
        "--samples",
        type=int,
        metavar="K",
        help="the median or mean (numeric) or vote (categorical) of K draws per cell; default: the "
        "predictive point estimate (conditional median or mean / most probable value, one network pass "
        "per row)",
    )
    p.add_argument(
        "--keep-draws",
        action="store_true",
        help="with --samples K: also write each draw as a completed table (the K imputations of multiple "
        "imputation), named as OUT with .draw1 .. .drawK before its extension",
    )
    add_sampling_steps_flag(p, "with --samples: ")
    p.add_argument(
        "--numeric-point",
        choices=NUMERIC_POINTS,
        help="point estimate of a numeric cell: median (least absolute error) or mean (least squared "
        "error); default: the model's setting (median for a new fit)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the fit and of the draws (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "--categorical",
        nargs="+",
        metavar="COL",
        help="columns to model as categorical (an identifier column, every value distinct, is otherwise "
        "copied unchanged)",
    )
    p.add_argument("--numeric", nargs="+", metavar="COL", help="columns to model as numeric")
    add_fit_flags(p)
    p.add_argument("--batch-rows", type=int, default=65_536, help="rows per streamed batch (default 65,536)")
    p.add_argument("--in-place", action="store_true", help="allow the output to replace the input")
    add_engine_flags(p)
    add_threads_flag(p)
    p.set_defaults(func=cmd_impute)
    return p


def _parse_fix(items: list[str]) -> dict[str, str]:
    fixed: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SeqdiffError(f"--fix {item!r}: expected COLUMN=VALUE, e.g. --fix genre=Action")
        if name in fixed:
            raise SeqdiffError(f"--fix: column {name!r} given twice")
        fixed[name] = value
    return fixed


def cmd_sample_table(args: argparse.Namespace) -> None:
    """Sample synthetic rows from a table model, optionally with some cells fixed."""
    name = _stdout_name(args.fix_file) if args.fix_file else "stdout.csv"
    with file_or_stdout(args.output, name) as out:
        rows = _sample_table(args, Path(out))
    say(f"{rows:,} rows written to {'stdout' if args.output == '-' else args.output}")


def _sample_table(args: argparse.Namespace, out: Path) -> int:
    """Write the sampled rows to `out`; returns how many."""
    import pyarrow as pa

    from seqdiff.tabular.files import read_table
    from seqdiff.tabular.imputer import MaskedDiffusionImputer
    from seqdiff.tabular.writing import output_dialect, output_format, write_table

    output_format(out)
    fixed = None
    rows = args.rows
    if args.fix_file:
        if Path(args.fix_file).resolve() == out.resolve():
            raise SeqdiffError(f"{out}: the output would overwrite --fix-file")
        fixed = read_table(args.fix_file, options=read_options(args))
        rows = rows or fixed.num_rows
    elif args.fix:
        fixed = _parse_fix(args.fix)
    if rows is None or rows < 1:
        raise SeqdiffError("--rows must be at least 1 (or give --fix-file)")
    imputer = MaskedDiffusionImputer.load(args.checkpoint, device=args.device)
    imputer.set_params(progress=None, sampling_steps=args.sampling_steps)
    table = pa.Table.from_pandas(imputer.sample(rows, fixed, seed=args.seed), preserve_index=False)
    write_table(table, out, output_dialect(out, args.fix_file, read_options(args)))
    return rows


def add_sample_table_parser(sample_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``seqdiff sample table`` on the subparsers of ``seqdiff sample``; returns its parser.

    Example:
        >>> parser = argparse.ArgumentParser(prog="seqdiff sample")
        >>> p = add_sample_table_parser(parser.add_subparsers(dest="kind"))
        >>> parser.parse_args(["table", "--checkpoint", "m", "--rows", "5", "-o", "s.parquet"]).rows
        5
    """
    p = sample_subparsers.add_parser(
        "table",
        help="synthetic table rows",
        description="Sample synthetic rows from a table model. --fix COLUMN=VALUE gives every row that value; "
        "--fix-file gives partial rows whose non-null cells are kept.",
    )
    p.add_argument("--checkpoint", required=True, help="table model folder (seqdiff impute --save-model)")
    p.add_argument("--rows", type=int, help="rows to sample (default with --fix-file: its row count)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file: .parquet or .pq, .csv, .tsv or .txt (optionally .gz), or .xlsx; - for CSV on "
        "stdout",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--fix", action="append", default=[], metavar="COL=VALUE", help="fix a column's value")
    group.add_argument(
        "--fix-file", metavar="PARTIAL", help="Parquet, CSV or Excel file of partial rows to complete"
    )
    add_read_flags(p)
    add_sampling_steps_flag(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_threads_flag(p)
    p.set_defaults(func=cmd_sample_table)
    return p
