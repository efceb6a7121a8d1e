"""Numbers that stand for a missing value: ``-999``, ``9999`` and the like, which instruments, surveys
and older statistics packages write where a measurement is missing. To a reader they are numbers like
any other, and a column's ``99`` may be real, so seqdiff does not guess: `missing_codes` names the
likely ones, and ``--na-values`` reads them as missing.

A likely code is a run of nines (two or more, either sign) in at least MIN_CODE_ROWS rows of a numeric
column, lying farther from the column's other values than those values spread.

Example:
    >>> table = pa.table({"temp": [12.5, 14.0, -999.0, 13.2, -999.0, -999.0], "age": [99, 45, 99, 80, 99, 62]})
    >>> [code.describe() for code in missing_codes(table)]
    ["column 'temp': -999 in 3 rows, far outside its other values (12.5 to 14)"]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seqdiff.tabular.codecs import fractional

MIN_CODE_ROWS = 3  # a value in fewer rows is too rare to be worth a message
_NINES = [sign * (10**digits - 1) for digits in range(2, 10) for sign in (-1, 1)]


@dataclass(frozen=True)
class MissingCode:
    """A number in ``rows`` rows of ``column`` that looks like a code for missing, and the range of the
    column's other values."""

    column: str
    value: float
    rows: int
    low: float
    high: float

    @property
    def token(self) -> str:
        """The code as a CSV file writes it (``-999``, not ``-999.0``)."""
        return _number(self.value)

    def describe(self) -> str:
        return (
            f"column {self.column!r}: {self.token} in {self.rows:,} rows, far outside its other values "
            f"({_number(self.low)} to {_number(self.high)})"
        )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def missing_codes(table: pa.Table) -> list[MissingCode]:
    """The likely codes for missing among the numeric columns of `table` (integers and floats), in
    column order."""
    found = []
    for name, column in zip(table.column_names, table.columns, strict=True):  # names may repeat
        if not (pa.types.is_integer(column.type) or fractional(column.type)):
            continue
        counts = pc.value_counts(column.drop_null())
        values = counts.field("values").to_numpy(zero_copy_only=False).astype(np.float64)
        rows = counts.field("counts").to_numpy(zero_copy_only=False)
        nines = np.isin(values, _NINES)
        others = values[~nines & np.isfinite(values)]
        if not nines.any() or len(others) == 0:
            continue
        low, high = float(others.min()), float(others.max())
        for value, count in zip(values[nines], rows[nines], strict=True):
            gap = low - value if value < low else value - high
            if count >= MIN_CODE_ROWS and gap > max(high - low, 0.0):
                found.append(MissingCode(name, float(value), int(count), low, high))
    return found
