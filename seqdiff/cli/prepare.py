"""``seqdiff prepare``: tokenise protein sequence files once into a training shard folder.

Training from the folder (``data.train: FOLDER`` in a config) reads memory-mapped token ids and
skips parsing and tokenising. Registered by `seqdiff.cli.main` with ``add_prepare_parser(subparsers)``.

Example:
    >>> parser = argparse.ArgumentParser(prog="seqdiff")
    >>> p = add_prepare_parser(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["prepare", "out", "a.fasta", "b.fasta.gz"]).inputs
    ['a.fasta', 'b.fasta.gz']
"""

from __future__ import annotations

import argparse


def cmd_prepare(args: argparse.Namespace) -> None:
    from seqdiff.protein.model import ProteinAdapter

    shard = ProteinAdapter().shard(args.inputs)
    folder = shard.save(args.out)
    print(f"{len(shard)} sequences, {int(shard.offsets[-1])} tokens -> {folder}")


def add_prepare_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("prepare", help="tokenise protein sequence files into a training shard folder")
    p.add_argument("out", help="shard folder to write (tokens.npy, offsets.npy, meta.json)")
    p.add_argument("inputs", nargs="+", help="FASTA files (gzipped or not), concatenated in order")
    p.set_defaults(func=cmd_prepare)
    return p
