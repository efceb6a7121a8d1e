"""The ``seqdiff`` command line. Each subcommand parses its flags and calls the Python API.

Errors the user can fix (bad input, missing files) are ``SeqdiffError``: printed as one line,
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from seqdiff.errors import SeqdiffError


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
    cfg = TrainConfig.load(args.config, overrides)
    if cfg.modality == "protein":
        from seqdiff.protein.model import ProteinAdapter

        adapter = ProteinAdapter()
    elif cfg.modality == "table":
        from seqdiff.tabular.model import TableAdapter

        adapter = TableAdapter()
    else:
        raise SeqdiffError(f"config: unknown modality {cfg.modality!r} (protein or table)")
    folder = train(cfg, adapter)
    print(f"model saved to {folder}")


def progress_bar(desc: str):
    """A tqdm bar on stderr (silent when stderr is not a terminal) and its update callback."""
    from tqdm.auto import tqdm

    bar = tqdm(total=0, desc=desc, unit="step", disable=None, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def sampling_options(args: argparse.Namespace) -> dict:
    """The shared sampling flags as keyword arguments of `design` (and of its Ray version)."""
    names = ["checkpoint", "steps", "grid", "temperature", "top_p", "seed", "batch_size", "device"]
    return {name: getattr(args, name) for name in names}


def sample_designs(jobs: list, args: argparse.Namespace, desc: str) -> list:
    """Run the design API with the shared sampling flags, under a progress bar."""
    from seqdiff.protein import design as api

    bar, update = progress_bar(desc)
    with bar:
        return api.design(jobs, **sampling_options(args), progress=update)


def cmd_design(args: argparse.Namespace) -> None:
    from seqdiff.protein import design as api
    from seqdiff.protein.io import ensure_not_input, read_sequences, write_fasta
    from seqdiff.protein.positions import parse_length_range

    if args.n < 1:
        raise SeqdiffError("-n must be at least 1")
    outputs = [o for o in (args.output, args.per_position) if o and o != "-"]
    for out in outputs:
        ensure_not_input(out, [args.input])
    if args.contig:
        if args.fix or args.redesign:
            raise SeqdiffError("--contig designs around the motif: do not combine it with --fix/--redesign")
        length = parse_length_range(args.length) if args.length else None
        jobs = api.plan_from_contig(
            args.contig, args.input, length, n=args.n, seed=args.seed, numbering=args.numbering
        )
    else:
        if args.length:
            raise SeqdiffError("--length goes with --contig")
        jobs = api.plan_from_records(read_sequences(args.input), args.fix, args.redesign, n=args.n)
    if args.engine == "ray":
        from seqdiff.ray_engine import design_ray

        designs = design_ray(
            jobs,
            **sampling_options(args),
            address=args.ray_address,
            actors=args.actors,
        )
        if args.rank_by or args.per_position:
            designs = list(designs)
        # Otherwise the FASTA is written as the designs arrive: memory holds one unit at a time.
    else:
        designs = sample_designs(jobs, args, "designing")
    if args.rank_by:
        from seqdiff.protein.esm import rank_designs

        designs = rank_designs(designs, args.rank_by, args.esm, device=args.device)
    write_fasta((d.to_record() for d in designs), args.output, inputs=[args.input])
    if args.per_position:
        api.write_per_position(designs, args.per_position)


def cmd_eval(args: argparse.Namespace) -> None:
    import json

    from seqdiff.core.device import resolve_device
    from seqdiff.protein.model import evaluate_file, load_protein_model

    model, _ = load_protein_model(args.checkpoint, resolve_device(args.device))
    report = evaluate_file(
        model, args.input, passes=args.passes, limit=args.limit, max_tokens=args.max_tokens, seed=args.seed
    )
    report["checkpoint"] = args.checkpoint or "default"
    print(json.dumps(report, indent=1))


def cmd_sample_protein(args: argparse.Namespace) -> None:
    from seqdiff.protein import design as api
    from seqdiff.protein.io import write_fasta

    if args.length < 1 or args.n < 1:
        raise SeqdiffError("--length and -n must be at least 1")
    jobs = [api.DesignJob("sample", i, "_" * args.length) for i in range(args.n)]
    designs = sample_designs(jobs, args, "sampling")
    write_fasta([d.to_record() for d in designs], args.output)


def cmd_app(args: argparse.Namespace) -> None:
    from seqdiff.app_launch import launch

    if args.address not in ("127.0.0.1", "localhost", "::1"):
        print(f"seqdiff: serving on {args.address}: anyone who can reach it can use the app", file=sys.stderr)
    code = launch(args.address, args.port, headless=not args.browser)
    if code not in (0, 130):
        raise SeqdiffError(f"the app stopped with status {code}")


def add_sampling_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", type=int, default=1, help="designs per input (default 1)")
    p.add_argument("--steps", type=int, default=100, help="sampler steps (default 100)")
    p.add_argument(
        "--grid", choices=["cosine", "uniform"], default="cosine", help="time grid (default cosine)"
    )
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1: off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--checkpoint", help="model folder (default: the shipped protein model)")
    p.add_argument("-o", "--output", default="-", help="output FASTA (default stdout)")


def build_parser() -> argparse.ArgumentParser:
    from seqdiff import __version__
    from seqdiff.ray_engine import add_engine_flags

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
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "design",
        help="design protein sequences around fixed positions or a motif",
        description="Keep some residues of each input and design the rest. Ranges are 1-based and "
        "inclusive. '_' in an input sequence marks a position to design.",
    )
    p.add_argument("input", help="FASTA (sequences), or PDB/FASTA motif source with --contig")
    p.add_argument("--fix", help="residues to keep, e.g. 10-25,40-45; all others are designed")
    p.add_argument("--redesign", help="residues to design, e.g. 30-40; all others are kept")
    p.add_argument("--contig", help="RFdiffusion contig, e.g. '5-20,A16-35,10-25,A52-71,5-20'")
    p.add_argument("--length", help="total length range for --contig, e.g. 60-105")
    p.add_argument(
        "--numbering", choices=["pdb", "sequential"], default="pdb", help="how contig motif numbers count"
    )
    p.add_argument(
        "--per-position", metavar="FILE.parquet", help="write per-position probabilities and steps"
    )
    p.add_argument("--rank-by", choices=["nelbo", "esm"], help="sort designs by this score (best first)")
    p.add_argument("--esm", help="ESM-2 checkpoint (.pt file or name) for --rank-by esm")
    add_sampling_flags(p)
    add_engine_flags(p)
    p.set_defaults(func=cmd_design)

    p = sub.add_parser("eval", help="NELBO and perplexity of a protein model on a FASTA file")
    p.add_argument("input", help="FASTA / A3M file")
    p.add_argument("--checkpoint", help="model folder (default: the shipped protein model)")
    p.add_argument("--passes", type=int, default=4, help="Monte-Carlo passes (for the standard error)")
    p.add_argument("--limit", type=int, help="only the first N sequences")
    p.add_argument("--max-tokens", type=int, default=8192)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_eval)

    from seqdiff.protein.esm_cli import add_score_parser
    from seqdiff.tabular.cli import add_impute_parser, add_sample_table_parser

    add_score_parser(sub)
    add_impute_parser(sub)

    p = sub.add_parser("sample", help="unconditional samples")
    kinds = p.add_subparsers(dest="kind", required=True)
    q = kinds.add_parser("protein", help="protein sequences of a given length")
    q.add_argument("--length", type=int, default=120)
    add_sampling_flags(q)
    q.set_defaults(func=cmd_sample_protein)
    add_sample_table_parser(kinds)

    p = sub.add_parser("app", help="start the web app (Streamlit) in your browser")
    p.add_argument("--address", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--browser", action="store_true", help="open a browser window")
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SeqdiffError as err:
        print(f"seqdiff: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqdiff: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
