"""The sampler's settings, declared once: each with its default, its help text and its rule.

The command line builds its flags from this declaration while it builds its parser, so this module
imports no torch (the decoding strategies themselves are in `seqdiff.core.decoding`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields

DECODINGS = ("ancestral", "confidence", "remask", "first-hitting")
GRIDS = ("cosine", "uniform")


def _setting(
    default: object,
    help: str,
    ok: Callable[[object], bool],
    reason: str,
    choices=None,
    only: str | None = None,
):
    """A field of ``SamplerSettings``: its default, its help, the rule ``check`` applies, and the one
    decoding it matters to (None: all)."""
    rule = {"help": help, "ok": ok, "reason": reason, "choices": choices, "only": only}
    return field(default=default, metadata=rule)


def _one_of(default: str, help: str, choices: tuple[str, ...]):
    return _setting(default, help, lambda v: v in choices, f"must be one of {', '.join(choices)}", choices)


@dataclass(frozen=True)
class SamplerSettings:
    """Everything that shapes a draw besides the model, the template and the noise.

    Each field carries its help text and its rule, so that command-line flags can be built from
    this declaration. ``check`` refuses settings that cannot work.

    Example:
        >>> SamplerSettings(decoding="remask").remask_eta
        0.02
        >>> SamplerSettings(top_p=0).check()
        Traceback (most recent call last):
        ...
        ValueError: top_p must be in (0, 1]
    """

    steps: int = _setting(100, "sampler steps (time grid points)", lambda v: v >= 1, "must be at least 1")
    grid: str = _one_of("cosine", "time grid", GRIDS)
    temperature: float = _setting(
        1.0, "softmax temperature of the token draws", lambda v: 0 < v < math.inf, "must be > 0"
    )
    top_p: float = _setting(1.0, "nucleus sampling mass (1: off)", lambda v: 0 < v <= 1, "must be in (0, 1]")
    decoding: str = _one_of(
        "ancestral",
        "which masked positions each step decides: ancestral (MD4, each on its own), confidence "
        "(the most confident first), remask (ancestral, and decided positions may be masked again), "
        "first-hitting (one position a step in random order: exact joint draws in as many steps as masks)",
        DECODINGS,
    )
    order_noise: float = _setting(
        1.0,
        "confidence decoding: scale of the Gumbel noise on the order (0: strictly most confident first)",
        lambda v: 0 <= v < math.inf,
        "must be >= 0",
        only="confidence",
    )
    # 0.02: with a linear schedule at 100 steps a decided position is masked again less than once
    # on average (the sum over steps of alpha_t sigma_t), so early decisions get a second look
    # without turning sampling into resampling.
    remask_eta: float = _setting(
        0.02,
        "remask decoding: the cap on each step's probability of masking a decided position again",
        lambda v: 0 <= v <= 1,
        "must be in [0, 1]",
        only="remask",
    )

    def problem(self) -> tuple[str, str] | None:
        """The first setting that cannot work and why, e.g. ``("steps", "must be at least 1")``."""
        for f in fields(self):
            if not f.metadata["ok"](getattr(self, f.name)):
                return f.name, f.metadata["reason"]
        return None

    def check(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        problem = self.problem()
        if problem is not None:
            raise ValueError(" ".join(problem))

    def in_use(self) -> dict[str, object]:
        """The settings that shape this decoding's draws, by name (not another decoding's parameter).

        Example:
            >>> list(SamplerSettings(decoding="confidence").in_use())
            ['steps', 'grid', 'temperature', 'top_p', 'decoding', 'order_noise']
        """
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.metadata["only"] in (None, self.decoding)
        }


DEFAULT_SETTINGS = SamplerSettings()


def flag(name: str) -> str:
    """The command-line flag of a setting.

    Example:
        >>> flag("top_p")
        '--top-p'
    """
    return "--" + name.replace("_", "-")
