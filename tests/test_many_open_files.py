"""A process holding over 1024 open files: select() cannot wait on a descriptor past 1024.

A big test suite (the pytest fixture's process) or a busy server has that many; waits use
poll() instead.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest

from hooklab.client.http import Client


@pytest.fixture
def many_files() -> Iterator[None]:
    """Over 1024 descriptors open, so the next socket or pipe gets a number past 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1300:
        pytest.skip(f"this machine allows {hard} open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1300), hard))
    pipes = [os.pipe() for _ in range(560)]
    yield
    for pipe in pipes:
        os.close(pipe[0])
        os.close(pipe[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_lean_client_reuses_its_connection(live_server, many_files):
    client = Client(live_server.url, lean=True)
    try:
        assert client.get_json("/api/health")["ok"] is True
        assert client.connection._conn.sock.fileno() > 1024
        # The second call checks the kept-alive connection before reusing it.
        assert client.get_json("/api/health")["ok"] is True
    finally:
        client.close()
