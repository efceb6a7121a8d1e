"""The one error type users see: a clear one-line message, never a traceback."""


class SeqdiffError(ValueError):
    """Bad input or an impossible request, explained in one line (a ValueError, as scikit-learn and
    Python expect of a bad argument).

    The CLI prints ``seqdiff: error: <message>`` and exits with status 2; the app shows the
    message in the page. Messages name the file, record, position or column at fault.

    Example:
        >>> raise SeqdiffError("input.fasta: record 'x': position 7: 'J' is not an amino acid")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: input.fasta: record 'x': position 7: 'J' is not an amino acid
    """
