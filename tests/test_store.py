"""Small helpers of the store."""

import pytest

from hooklab.shared.store import row_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7), (7, 7), (2**63 - 1, 2**63 - 1), (2**63, None), (0, None), ("-3", None),
     ("abc", None), (None, None)],
)  # fmt: skip
def test_row_id_is_none_for_ids_no_row_can_have(value, expected):
    assert row_id(value) == expected
