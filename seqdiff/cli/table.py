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
from pathlib import Path

from seqdiff.cli.options import add_engine_flags, say
from seqdiff.errors import SeqdiffError
from seqdiff.tabular.encoding import NUMERIC_POINTS


def cmd_impute(args: argparse.Namespace) -> None:
    """Fill the missing cells of a Parquet / CSV file with a saved model or one fitted on the file."""
    from seqdiff.tabular.imputer import MaskedDiffusionImputer
    from seqdiff.tabular.stream import check_output, impute_file, read_sample

    output = args.output or (args.input if args.in_place else None)
    if output is None:
        raise SeqdiffError("impute: give an output with -o OUT.parquet (or --in-place)")
    check_output(args.input, output, args.in_place)
    if (args.samples is not None and args.samples < 1) or args.batch_rows < 1:
        raise SeqdiffError("--samples and --batch-rows must be at least 1")
    # With --engine ray, --device is where the actors run; this process only loads or fits the model,
    # and a cluster's head node often has no GPU.
    here = args.device
    if args.engine == "ray":
        from seqdiff.ray_engine import require_ray

        require_ray()  # before a fit that may take minutes
        here = "auto"
    if args.checkpoint:
        fit_only = [
            flag
            for flag in ["--categorical", "--numeric", "--save-model", *FIT_FLAGS]
            if getattr(args, _dest(flag)) is not None
        ]
        if fit_only:
            raise SeqdiffError(f"{', '.join(fit_only)}: only when fitting, not with --checkpoint")
        imputer = MaskedDiffusionImputer.load(args.checkpoint, device=here)
        imputer.set_params(progress=None)
    else:
        settings = {p: v for f, p in FIT_FLAGS.items() if (v := getattr(args, _dest(f))) is not None}
        imputer = MaskedDiffusionImputer(
            categorical=args.categorical or (),
            numeric=args.numeric or (),
            device=here,
            seed=args.seed,
            progress=None,
            **settings,
        )
        table, total = read_sample(
            args.input, imputer.max_fit_rows, seed=args.seed, batch_rows=args.batch_rows
        )
        if table.num_rows < total:
            say(f"fitting on a random sample of {table.num_rows:,} of {total:,} rows")
        imputer.fit(table, source=str(args.input))
        if "best_step" in imputer.training_:
            fit = imputer.training_
            extra = fit["steps"] - fit["schedule_steps"]
            past = f" ({extra:,} past --max-steps: the held-out cells still improved)" if extra > 0 else ""
            say(
                f"early stopping: {fit['steps']:,} steps{past}, best held-out NLL "
                f"{fit['validation_nll_per_cell']:.3f} nats per cell at step {fit['best_step']:,} (kept)"
            )
        if args.save_model:
            imputer.save(args.save_model)
            say(f"model saved to {args.save_model}")
    # --samples K: K draws per cell; without it, the predictive point estimate (one pass per row).
    imputer.set_params(point="predictive" if args.samples is None else "draws")
    if args.numeric_point:
        imputer.set_params(numeric_point=args.numeric_point)
    options = {
        "batch_rows": args.batch_rows,
        "n_samples": args.samples or 1,
        "progress": None,
        "in_place": args.in_place,
    }
    if args.engine == "ray":
        from seqdiff.ray_engine import impute_file_ray

        imputer.set_params(device=args.device)
        report = impute_file_ray(
            args.input, output, imputer, **options, address=args.ray_address, actors=args.actors
        )
    else:
        report = impute_file(args.input, output, imputer, **options)
    say(f"imputed {report.imputed_cells:,} cells in {report.rows:,} rows -> {report.output}")


# Fitting settings of `seqdiff impute`: CLI flag -> MaskedDiffusionImputer parameter.
FIT_FLAGS = {
    "--max-steps": "max_steps",
    "--max-extra-steps": "max_extra_steps",
    "--extend-tol": "extend_tol",
    "--max-minutes": "max_minutes",
    "--bins": "n_bins",
    "--max-bin-width": "max_bin_width",
    "--value-frequencies": "value_frequencies",
    "--fit-batch-rows": "batch_rows",
    "--early-stopping": "early_stopping",
    "--loss-weighting": "loss_weighting",
    "--precision": "precision",
}


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
        help="fill the missing cells of a table (Parquet or CSV)",
        description="Fill the missing cells of a Parquet or CSV table with a masked-diffusion model: a saved "
        "one (--checkpoint) or one fitted on the observed cells of IN. Observed cells are kept unchanged; "
        "the output is Parquet with the input's columns and types.",
    )
    p.add_argument("input", help="table to impute (.parquet, .pq, .csv, .tsv)")
    p.add_argument("-o", "--output", help="output Parquet file")
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
        "--numeric-point",
        choices=NUMERIC_POINTS,
        help="point estimate of a numeric cell: median (least absolute error) or mean (least squared "
        "error); default: the model's setting (median for a new fit)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--categorical", nargs="+", metavar="COL", help="columns to model as categorical")
    p.add_argument("--numeric", nargs="+", metavar="COL", help="columns to model as numeric")
    p.add_argument(
        "--max-steps",
        type=int,
        help="training steps when fitting: the learning-rate schedule's length (default 2000)",
    )
    p.add_argument(
        "--max-extra-steps",
        type=int,
        help="with early stopping, train past --max-steps, in rounds of half of it, by at most this many "
        "steps while the held-out cells still improve (default 2000; 0: never)",
    )
    p.add_argument(
        "--extend-tol",
        type=float,
        metavar="FRACTION",
        help="the held-out cells' relative improvement over the last quarter of --max-steps steps above "
        "which training goes past it, or on to another round (default 0.004)",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        help="training time limit when fitting (default: none; whichever ends first)",
    )
    p.add_argument("--bins", type=int, help="quantile bins per numeric column when fitting (default 32)")
    p.add_argument(
        "--max-bin-width",
        type=float,
        metavar="SD",
        help="when fitting, split numeric bins wider than this many standard deviations of their column "
        "at their median while each half keeps 8 values, up to twice --bins (default 0.25; 0: quantile "
        "bins only)",
    )
    p.add_argument(
        "--value-frequencies",
        type=int,
        help="periodic features of each observed number's place in its column, at this many frequencies, "
        "besides its bin (default 5; 0: the bin alone)",
    )
    p.add_argument("--fit-batch-rows", type=int, help="rows per training batch when fitting (default 256)")
    p.add_argument(
        "--early-stopping",
        action=argparse.BooleanOptionalAction,
        help="when fitting, hold out 5%% of the observed cells and stop once they stop improving "
        "(default: on)",
    )
    p.add_argument(
        "--loss-weighting",
        metavar="{auto,uniform,elbo}",
        help="training objective when fitting: uniform (mean cross-entropy over masked cells), elbo (MD4's "
        "NELBO), or auto (default: uniform)",
    )
    p.add_argument(
        "--precision",
        metavar="{auto,32-true,bf16-mixed}",
        help="training precision when fitting (default auto: bf16 autocast where bf16 is native, a GPU or "
        "an AVX512-BF16 / AMX CPU; else 32-true)",
    )
    p.add_argument("--batch-rows", type=int, default=65_536, help="rows per streamed batch (default 65,536)")
    p.add_argument("--in-place", action="store_true", help="allow the output to replace the input")
    add_engine_flags(p)
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
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from seqdiff.atomic import atomic_path
    from seqdiff.tabular.encoding import read_table
    from seqdiff.tabular.imputer import MaskedDiffusionImputer

    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise SeqdiffError(f"{out}: name the output .parquet, .pq or .csv")
    fixed = None
    rows = args.rows
    if args.fix_file:
        if Path(args.fix_file).resolve() == out.resolve():
            raise SeqdiffError(f"{out}: the output would overwrite --fix-file")
        fixed = read_table(args.fix_file)
        rows = rows or fixed.num_rows
    elif args.fix:
        fixed = _parse_fix(args.fix)
    if rows is None or rows < 1:
        raise SeqdiffError("--rows must be at least 1 (or give --fix-file)")
    imputer = MaskedDiffusionImputer.load(args.checkpoint, device=args.device)
    imputer.set_params(progress=None)
    table = pa.Table.from_pandas(imputer.sample(rows, fixed, seed=args.seed), preserve_index=False)
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            pacsv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp)
    say(f"{rows:,} rows written to {out}")


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
    p.add_argument("-o", "--output", required=True, help="output file (.parquet, .pq or .csv)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--fix", action="append", default=[], metavar="COL=VALUE", help="fix a column's value")
    group.add_argument("--fix-file", metavar="PARTIAL", help="Parquet/CSV of partial rows to complete")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(func=cmd_sample_table)
    return p
