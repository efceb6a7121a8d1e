"""Protein commands: ``seqdiff design``, ``seqdiff eval`` and ``seqdiff sample protein``.

Example:
    >>> parser = argparse.ArgumentParser(prog="seqdiff")
    >>> sub = parser.add_subparsers(dest="command")
    >>> add_design_parser(sub).parse_args(["in.fasta", "--fix", "1-5"]).fix
    '1-5'
"""

from __future__ import annotations

import argparse

from seqdiff.cli.options import (
    add_engine_flags,
    add_sampling_flags,
    add_threads_flag,
    progress_bar,
    ray_options,
    sampling_options,
    say,
    shown,
)
from seqdiff.errors import SeqdiffError
from seqdiff.protein.family_settings import DEFAULT_WEIGHT, AdaptRecipe


def sample_designs(jobs: list, options: dict, desc: str) -> list:
    """Run the design API with the sampling ``options`` (`sampling_options`), under a progress bar."""
    from seqdiff.protein import design as api

    bar, update = progress_bar(desc)
    with bar:
        return api.design(jobs, **options, progress=update)


def cmd_design(args: argparse.Namespace) -> None:
    from seqdiff.protein import design as api
    from seqdiff.protein.io import ensure_not_input, read_sequences, write_fasta
    from seqdiff.protein.positions import parse_length_range

    if args.n < 1:
        raise SeqdiffError("-n must be at least 1")
    if args.rank_by == "family" and not (args.homologs or args.homologs_from):
        raise SeqdiffError("--rank-by family needs --homologs or --homologs-from")
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
    family = None
    if args.homologs or args.homologs_from:
        family = adapt_for(_queries(args), args, profile_weight=args.profile_weight)
    options = sampling_options(args)
    if family is not None:
        options["checkpoint"] = str(family.model.path)
        options["prior"] = family.guide
    if args.engine == "ray":
        from seqdiff.ray_engine import design_ray

        designs = design_ray(jobs, **options, **ray_options(args))
        # Unless they must be ranked, the FASTA is written as the designs arrive.
    else:
        designs = sample_designs(jobs, options, "designing")
    if family is not None:
        from seqdiff.protein.family_design import score_designs

        designs = score_designs(designs, family)
    if args.rank_by or args.per_position:
        designs = rank(list(designs), args)
    write_fasta((d.to_record() for d in designs), args.output, inputs=[args.input])
    if args.per_position:
        api.write_per_position(designs, args.per_position)


def _queries(args: argparse.Namespace) -> list:
    """The proteins whose family is wanted: the input's records, or a contig's motif source chain(s)."""
    from seqdiff.protein.family_design import motif_queries
    from seqdiff.protein.io import read_sequences

    if args.contig:
        return motif_queries(args.contig, args.input)
    return read_sequences(args.input)


def adapt_for(queries: list, args: argparse.Namespace, profile_weight: float = DEFAULT_WEIGHT):
    """The family of ``queries`` from ``--homologs``/``--homologs-from``, the model adapted to it."""
    from seqdiff.protein.family_design import prepare_family

    bar, update = progress_bar("adapting to homologs")
    with bar:
        family = prepare_family(
            queries,
            homologs=args.homologs,
            database=args.homologs_from,
            checkpoint=args.checkpoint,
            recipe=AdaptRecipe(steps=args.adapt_steps, minutes=args.adapt_minutes),
            progress=update,
            device=args.device,
            profile_weight=profile_weight,
        )
    reused = "reused from the cache" if family.model.reused else "adapted"
    say(f"{len(family.homologs):,} homologs from {family.source}; model {reused}: {family.model.path}")
    return family


def rank(designs: list, args: argparse.Namespace) -> list:
    """``designs`` sorted by ``--rank-by`` (best first), or as they are."""
    if args.rank_by == "family":
        from seqdiff.protein.family_design import rank_by_family

        return rank_by_family(designs)
    if args.rank_by:
        from seqdiff.protein.esm import rank_designs

        return rank_designs(designs, args.rank_by, args.esm, device=args.device)
    return designs


def cmd_eval(args: argparse.Namespace) -> None:
    import json

    from seqdiff.core.device import resolve_device
    from seqdiff.protein.model import evaluate_file, load_protein_model

    model, _ = load_protein_model(args.checkpoint, resolve_device(args.device))
    report = evaluate_file(
        model, args.input, passes=args.passes, limit=args.limit, max_tokens=args.max_tokens, seed=args.seed
    )
    report["checkpoint"] = args.checkpoint or "default"
    print(shown(json.dumps(report, indent=1)))


def cmd_sample_protein(args: argparse.Namespace) -> None:
    from seqdiff.protein import design as api
    from seqdiff.protein.io import write_fasta

    if args.length < 1 or args.n < 1:
        raise SeqdiffError("--length and -n must be at least 1")
    jobs = [api.DesignJob("sample", i, "_" * args.length) for i in range(args.n)]
    designs = sample_designs(jobs, sampling_options(args), "sampling")
    write_fasta([d.to_record() for d in designs], args.output)


def add_design_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``seqdiff design``."""
    p = sub.add_parser(
        "design",
        help="design protein sequences around fixed positions or a motif",
        description="Keep some residues of each input and design the rest. Ranges are 1-based and "
        "inclusive. '_' in an input sequence marks a position to design.",
    )
    p.add_argument("input", help="FASTA (sequences), or PDB/FASTA motif source with --contig; - for stdin")
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
    p.add_argument(
        "--rank-by", choices=["nelbo", "esm", "family"], help="sort designs by this score (best first)"
    )
    p.add_argument("--esm", help="ESM-2 checkpoint (.pt file or name) for --rank-by esm")
    add_family_flags(p)
    add_sampling_flags(p)
    add_engine_flags(p)
    add_threads_flag(p)
    p.set_defaults(func=cmd_design)
    return p


def add_eval_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``seqdiff eval``."""
    p = sub.add_parser("eval", help="NELBO and perplexity of a protein model on a FASTA file")
    p.add_argument("input", help="FASTA / A3M file; - for FASTA on stdin")
    p.add_argument("--checkpoint", help="model folder (default: the shipped protein model)")
    p.add_argument("--passes", type=int, default=4, help="Monte-Carlo passes (for the standard error)")
    p.add_argument("--limit", type=int, help="only the first N sequences")
    p.add_argument("--max-tokens", type=int, default=8192)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    add_threads_flag(p)
    p.set_defaults(func=cmd_eval)
    return p


def add_sample_protein_parser(kinds: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``seqdiff sample protein`` on the subparsers of ``seqdiff sample``."""
    p = kinds.add_parser("protein", help="protein sequences of a given length")
    p.add_argument("--length", type=int, default=120)
    add_sampling_flags(p)
    add_threads_flag(p)
    p.set_defaults(func=cmd_sample_protein)
    return p


def add_adaptation_flags(p: argparse.ArgumentParser) -> None:
    """How long the adaptation trains."""
    p.add_argument(
        "--adapt-steps",
        type=int,
        default=AdaptRecipe.steps,
        help=f"training steps of the adaptation (default {AdaptRecipe.steps})",
    )
    p.add_argument(
        "--adapt-minutes",
        type=float,
        default=AdaptRecipe.minutes,
        help=f"time cap of the adaptation: it stops there, keeping its best weights (default {AdaptRecipe.minutes:g})",
    )


def add_family_flags(p: argparse.ArgumentParser) -> None:
    """Where the homologs come from, and how long the adaptation trains."""
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--homologs",
        metavar="FILE",
        help="homologs of the input (A3M, aligned or unaligned FASTA, Stockholm; gzip allowed): adapt the "
        "model to them (cached), then design, and score each design against their profile HMM",
    )
    source.add_argument(
        "--homologs-from",
        metavar="DB.fasta",
        help="find the homologs in this local protein database (FASTA, gzip allowed) with jackhmmer",
    )
    p.add_argument(
        "--profile-weight",
        type=float,
        default=DEFAULT_WEIGHT,
        metavar="W",
        help="with homologs: how strongly the family's profile HMM steers the designed positions, as "
        f"p(residue) x (profile odds)^W; 0 turns it off (default {DEFAULT_WEIGHT:g})",
    )
    add_adaptation_flags(p)


def cmd_adapt(args: argparse.Namespace) -> None:
    """Adapt a model to homologs and copy it to -o (it stays in the cache too)."""
    import shutil

    from seqdiff.core.bundle import check_model_folder
    from seqdiff.protein.io import read_sequences

    out = check_model_folder(args.output)
    if out.exists():
        raise SeqdiffError(f"{out}: exists; choose a new folder for the adapted model")
    queries = read_sequences(args.query) if args.query else []
    family = adapt_for(queries, args)
    try:
        shutil.copytree(family.model.path, out)
    except OSError as err:
        raise SeqdiffError(
            f"{out}: cannot copy the adapted model there ({err}); it stays in the cache"
        ) from err
    say(f"adapted model written to {out} (key {family.model.key})")


def add_adapt_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``seqdiff adapt``."""
    p = sub.add_parser(
        "adapt",
        help="adapt a protein model to a family's homologs (then: design --checkpoint MODEL_DIR)",
        description="Fine-tune a protein model on homologs and write it to a folder. 'seqdiff design "
        "--homologs' does this itself (and reuses the result from the cache).",
    )
    p.add_argument("homologs", nargs="?", help="homolog file (A3M, FASTA, Stockholm; gzip allowed)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL_DIR", help="folder for the adapted model")
    p.add_argument("--homologs-from", metavar="DB.fasta", help="search this database for homologs of --query")
    p.add_argument("--query", metavar="FASTA", help="the protein(s) whose homologs to search for")
    add_adaptation_flags(p)
    p.add_argument("--checkpoint", help="the model to adapt (default: the shipped one; or an ESM-2 name)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_threads_flag(p)
    p.set_defaults(func=cmd_adapt)
    return p
