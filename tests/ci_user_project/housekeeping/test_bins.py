"""The bins the fixture hands out: each test's own, fresh and empty, whatever the tests before
did. Run by tests/test_pytest_plugin.py against a server it then looks at: the ids of the bins
made here are written to the file named by BINS_MADE, one a line."""

import os

import pytest
import requests

EARLIER = []


def made(*bins):
    """Tell the outer test which bins the tests made (it checks what became of them)."""
    with open(os.environ["BINS_MADE"], "a") as out:
        out.writelines(f"{bin.id}\n" for bin in bins)


def test_a_bin_gets_what_the_code_sends(hooklab):
    bin = hooklab.create_bin()
    made(bin)
    requests.post(bin.url, json={"test": 1}, timeout=5)
    assert bin.wait_for(json={"test": 1}).json == {"test": 1}
    EARLIER.append(bin)


def test_the_next_test_gets_a_fresh_empty_bin_of_its_own(hooklab):
    bin = hooklab.create_bin()
    made(bin)
    assert bin.id not in [earlier.id for earlier in EARLIER]
    assert (bin.name, bin.secret) == ("", None)
    assert bin.data["response"] == {"status": 200, "headers": [], "body": None, "delay_ms": 0}
    assert bin.requests() == []
    # A late request of the code under test in the test before goes to that test's bin (or
    # nowhere, once it is deleted), never to this one.
    late = requests.post(EARLIER[0].url, json={"late": True}, timeout=5)
    assert late.status_code in (200, 404)
    with pytest.raises(AssertionError, match="It received no requests."):
        bin.wait_for(timeout=0.3)
    EARLIER.append(bin)


def test_more_bins_than_the_fixture_keeps_ready(hooklab):
    bins = [hooklab.create_bin() for _ in range(10)]
    made(*bins)
    assert len({bin.id for bin in bins} | {earlier.id for earlier in EARLIER}) == 12
    for n, bin in enumerate(bins):
        requests.post(bin.url, json={"n": n}, timeout=5)
    for n, bin in enumerate(bins):
        assert [r.json for r in bin.requests()] == [{"n": n}]


def test_a_bin_the_test_deleted_itself_is_no_trouble(hooklab):
    bin = hooklab.create_bin()
    made(bin)
    # The fixture's own delete of it then gets a 404: not this test's problem, nor the session's.
    hooklab.client.delete_bin(bin.id)
