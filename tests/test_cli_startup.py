"""The command line answers ``--help`` and argument errors without loading its heavy libraries: building
the parser and parsing imports none of them; each command imports what it computes with.

Each case runs in a fresh interpreter, since this one has long imported them all.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = {"torch", "lightning", "pyhmmer", "esm", "ray", "numba"}

# Runs ``main(argv)`` to its exit status (returned, or a parse's SystemExit), then reports it and the
# heavy modules loaded.
PARSE = """
import json, sys
from seqdiff.cli.main import main
try:
    code = main({argv!r})
except SystemExit as stop:
    code = stop.code
print(json.dumps({{"code": code, "heavy": sorted({heavy!r} & set(sys.modules))}}))
"""


def python(code: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_building_the_parser_imports_no_heavy_library() -> None:
    python(
        "import sys; from seqdiff.cli.main import build_parser; build_parser(); "
        f"heavy = {HEAVY!r} & set(sys.modules); assert not heavy, heavy"
    )


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["impute", "--help"], 0),
        (["design", "--help"], 0),
        (["adapt", "--help"], 0),
        (["sample", "protein", "--help"], 0),
        (["sample", "table", "--help"], 0),
        (["impute"], 2),  # no input file
        (["design", "in.fasta", "--decoding", "greedy"], 2),  # not a decoding
    ],
)
def test_parsing_imports_no_heavy_library(argv: list[str], code: int) -> None:
    last = python(PARSE.format(argv=argv, heavy=HEAVY)).stdout.splitlines()[-1]
    assert json.loads(last) == {"code": code, "heavy": []}


@pytest.mark.parametrize("output", ["out.csv", "out.json"])
def test_a_missing_input_is_refused_before_the_fit_loads(output: str) -> None:
    """A command that computes sets torch's threads first; lightning, the fit's, never loads."""
    last = python(
        PARSE.format(argv=["impute", "no/such.csv", "-o", output], heavy=HEAVY)
    ).stdout.splitlines()[-1]
    assert json.loads(last) == {"code": 2, "heavy": ["torch"]}
