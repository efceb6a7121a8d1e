"""Property tests: no table makes schema inference or encoding fail with anything but SeqdiffError."""

from __future__ import annotations

import warnings

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.encoding import TableEncoder
from seqdiff.tabular.schema import infer_schema

cells = {
    "int": st.integers(min_value=-(2**40), max_value=2**40),
    "float": st.one_of(st.floats(allow_nan=True, allow_infinity=False, width=64), st.none()),
    "text": st.one_of(st.text(max_size=6), st.none()),
    "bool": st.one_of(st.booleans(), st.none()),
}


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(min_value=0, max_value=12))
    n_cols = draw(st.integers(min_value=1, max_value=4))
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "a"]), min_size=n_cols, max_size=n_cols))
    columns = []
    for _ in names:
        kind = draw(st.sampled_from(sorted(cells)))
        columns.append(draw(st.lists(cells[kind], min_size=rows, max_size=rows)))
    frame = pd.DataFrame(dict(enumerate(columns))) if rows else pd.DataFrame({i: [] for i in range(n_cols)})
    frame.columns = names
    return frame


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.lists(st.sampled_from(["a", "b", "zz"]), max_size=2))
def test_infer_and_encode_raise_only_seqdiff_errors(frame: pd.DataFrame, categorical: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            schema = infer_schema(frame, categorical=categorical)
            encoder = TableEncoder.fit(frame, schema)
            tokens = encoder.encode(frame)
        except SeqdiffError as err:
            assert "\n" not in str(err)
            return
    assert tokens.shape == (len(frame), len(encoder.columns))
    assert ((tokens >= 0) & (tokens <= encoder.mask_id)).all()
