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
    if args.out:
        overrides.append(f"out={args.out}")
    cfg = TrainConfig.load(args.config, overrides)
    if cfg.modality == "protein":
        from seqdiff.protein.model import ProteinAdapter

        adapter = ProteinAdapter()
    else:
        raise SeqdiffError(f"config: unknown modality {cfg.modality!r} (protein)")
    folder = train(cfg, adapter)
    print(f"model saved to {folder}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqdiff", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train or fine-tune a model from a YAML config")
    p.add_argument("--config", help="YAML config (see pipelines/configs/)")
    p.add_argument("--init", help="start from a model: 'default' or a model folder")
    p.add_argument("--out", help="output folder (overrides the config's out:)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. trainer.max_steps=100"
    )
    p.set_defaults(func=cmd_train)
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
