"""The ``seqdiff`` command line: one package, one module per group of commands.

``main`` builds the parser (`seqdiff.cli.main`); protein commands live in `seqdiff.cli.protein` and
`seqdiff.cli.score`, table commands in `seqdiff.cli.table`, flags several commands share in
`seqdiff.cli.options`. Each command parses its flags and calls the Python API; it never reimplements a step.
"""

from seqdiff.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
