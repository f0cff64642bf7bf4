"""The `hooklab` pytest fixture: used directly here, and from a throwaway CI user's project."""

from __future__ import annotations

import base64
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from hooklab.client.http import Client, HooklabError
from hooklab.client.pytest_plugin import CapturedRequest, Hooklab, Housekeeper, json_matches
from hooklab.shared.signing import generate_secret, sign
from tests.conftest import make_settings, start_live_server
from tests.waiting import wait_for, wait_until_reading

PROJECT = Path(__file__).parent / "ci_user_project"


def test_create_bin_answers_as_configured_and_keeps_requests(hooklab):
    bin = hooklab.create_bin(name="ci", status=201, headers={"X-Ci": "yes"}, body="made")
    assert str(bin) == bin.url and bin.url.startswith(hooklab.url + "/b/")
    answer = requests.post(bin.url + "/a?x=1", json={"n": 1}, timeout=5)
    assert (answer.status_code, answer.headers["X-Ci"], answer.text) == (201, "yes", "made")
    requests.put(bin.url, data=b"\xff\x00", timeout=5)

    kept = bin.requests()
    assert [r.method for r in kept] == ["POST", "PUT"]  # oldest first
    assert kept[0].json == {"n": 1} and kept[0].subpath == "/a" and kept[0].query == {"x": ["1"]}
    assert kept[1].body == b"\xff\x00"
    bin.clear()
    assert bin.requests() == []


def test_wait_for_matches_method_path_json_and_predicate(hooklab):
    bin = hooklab.create_bin()
    requests.post(bin.url + "/orders", json={"id": 1, "items": [1, 2]}, timeout=5)
    requests.get(bin.url + "/health", timeout=5)
    requests.post(bin.url + "/orders", json={"id": 2, "tags": {"vip": True}}, timeout=5)

    assert bin.wait_for(method="get").subpath == "/health"
    assert bin.wait_for(path="/orders", json={"id": 2}).json["tags"] == {"vip": True}
    with pytest.raises(AssertionError):  # already returned by the wait_for above
        bin.wait_for(json={"tags": {"vip": True}}, timeout=0.2)
    assert bin.wait_for(predicate=lambda r: r.json and r.json["id"] == 1).path.endswith("/orders")


def test_wait_for_returns_each_request_once(hooklab):
    bin = hooklab.create_bin()
    for n in (1, 2):
        requests.post(bin.url, json={"n": n}, timeout=5)
    assert bin.wait_for(method="POST").json == {"n": 1}
    assert bin.wait_for(method="POST").json == {"n": 2}
    with pytest.raises(AssertionError) as failure:
        bin.wait_for(method="POST", timeout=0.3)
    message = str(failure.value)
    assert "No request matching method='POST'" in message
    assert "It received 2:" in message
    assert message.count("(matched by an earlier wait_for)") == 2


def test_wait_for_waits_for_a_request_still_to_come(hooklab):
    bin = hooklab.create_bin()
    waiter = threading.current_thread()

    def later():
        wait_until_reading(waiter)  # bin.wait_for below has asked, and waits
        requests.post(bin.url + "/late", json={"late": True}, timeout=5)

    sender = threading.Thread(target=later)
    sender.start()
    found = bin.wait_for(path="/late", timeout=5)
    sender.join()
    assert found.json == {"late": True}


def test_wait_for_lists_what_did_arrive(hooklab):
    bin = hooklab.create_bin()
    requests.post(bin.url + "/x?q=1", json={"order_id": 1}, timeout=5)
    requests.post(bin.url, data=b"\xff" * 5, timeout=5)
    with pytest.raises(AssertionError) as failure:
        bin.wait_for(json={"order_id": 2}, timeout=0.2)
    lines = str(failure.value).splitlines()
    assert lines[0] == (
        f"No request matching json={{'order_id': 2}} arrived at bin {bin.id} ({bin.url}) "
        "within 0.2 s."
    )
    assert lines[1] == "It received 2:"
    assert lines[2].endswith(f'POST /b/{bin.id}/x?q=1 (application/json) {{"order_id": 1}}')
    assert lines[3].endswith("<5 bytes>")

    empty = hooklab.create_bin()
    with pytest.raises(AssertionError, match="It received no requests."):
        empty.wait_for(timeout=0.1)


@pytest.mark.parametrize(
    "expected, actual, matches",
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": 1}, {"b": 1}, False),
        ({"a": 1}, None, False),
        ([1, 2], [1, 2], True),
        ([1, 2], [1, 2, 3], False),
        ({"a": True}, {"a": 1}, False),
        ({"a": 1}, {"a": 1.0}, True),
        (None, None, True),
        ("text", "text", True),
    ],
)
def test_json_matches_objects_on_the_keys_given(expected, actual, matches):
    assert json_matches(expected, actual) is matches


def signed_request(secret: str, body: bytes, timestamp: int = 1700000000, **fields):
    """A captured request carrying a Standard Webhooks signature made with `secret`."""
    headers = [
        ["Webhook-Id", "msg_1"],
        ["Webhook-Timestamp", str(timestamp)],
        ["Webhook-Signature", sign(secret, "msg_1", timestamp, body)],
    ]
    return CapturedRequest(
        {"headers": headers, "body_base64": base64.b64encode(body).decode(), **fields}
    )


def test_captured_request_helpers():
    secret = generate_secret()
    body = b'{"paid": true}'
    captured = signed_request(secret, body, method="POST")
    assert captured.method == "POST" and captured["method"] == "POST"
    assert captured.header("webhook-id") == "msg_1" and captured.header("nope") is None
    assert captured.body == body
    assert captured.verify(secret) and not captured.verify(generate_secret())
    assert captured.verify(secret) == True  # noqa: E712 (compares as a bool)
    wrong = captured.verify(generate_secret())
    assert wrong.reason == "signature does not match the secret given"
    assert "does not match the secret given" in repr(wrong)  # what a failing assert shows
    with pytest.raises(AttributeError):
        _ = captured.missing


def test_verify_judges_the_timestamp_as_a_receiver_would_when_it_arrived():
    # Signed correctly, but an hour before it arrived (a replay), or in milliseconds (a bug).
    secret = generate_secret()
    body = b'{"paid": true}'
    arrived = "2023-11-14T22:13:20.000Z"  # 1700000000
    for timestamp in (1700000000 - 3600, 1700000000 * 1000):
        verdict = signed_request(secret, body, timestamp, received_at=arrived).verify(secret)
        assert not verdict
        assert "away from when it arrived" in verdict.reason
    on_time = signed_request(secret, body, 1700000100, received_at=arrived)
    assert on_time.verify(secret)
    assert on_time.verify(secret).reason == "signature matches the secret given"


def test_wait_for_with_no_time_looks_through_what_has_arrived(hooklab):
    bin = hooklab.create_bin()
    requests.post(bin.url + "/a", json={"n": 1}, timeout=5)
    requests.post(bin.url + "/b", json={"n": 2}, timeout=5)
    assert bin.wait_for(json={"n": 2}, timeout=0).subpath == "/b"
    assert bin.wait_for(method="POST", timeout=0).subpath == "/a"
    with pytest.raises(AssertionError, match=r"within 0 s\.\nIt received 2:"):
        bin.wait_for(json={"n": 3}, timeout=0)


def test_add_webhook_fire_and_deliveries(hooklab):
    bin = hooklab.create_bin()
    webhook = hooklab.add_webhook(bin, event="payment_received")
    assert webhook["url"] == bin.url and webhook["secret"].startswith("whsec_")

    fired = hooklab.fire("payment_received", {"payment_id": 5})
    assert [d["webhook_id"] for d in fired["deliveries"]] == [webhook["id"]]
    request = bin.wait_for(json={"payment_id": 5})
    assert request.verify(webhook["secret"])

    [delivery] = hooklab.wait_for_deliveries(webhook)
    assert delivery["status"] == "succeeded" and delivery["payload"] == {"payment_id": 5}
    assert hooklab.deliveries(webhook["id"])[0]["id"] == delivery["id"]

    with pytest.raises(AssertionError, match=r"does not have 2 succeeded deliveries"):
        hooklab.wait_for_deliveries(webhook, count=2, timeout=0.2)


def test_a_webhook_signed_with_ed25519_verifies_with_its_public_key(hooklab):
    bin = hooklab.create_bin()
    webhook = hooklab.add_webhook(bin, event="payment_received", signature_scheme="v1a")
    hooklab.fire("payment_received", {"payment_id": 6})
    request = bin.wait_for(json={"payment_id": 6})
    assert request.header("webhook-signature").startswith("v1a,")
    assert request.verify(webhook["public_key"])


def test_errors_from_the_server_are_clear(hooklab):
    with pytest.raises(HooklabError, match=r"^hooklab: response.status must be"):
        hooklab.create_bin(status=99)
    with pytest.raises(HooklabError, match="hooklab: "):
        hooklab.fire("no_such_event")


def test_what_a_test_creates_is_deleted_after_it(hooklab):
    lab = Hooklab(hooklab.url)
    made = lab.create_bin()
    webhook = lab.add_webhook(made, event="*")
    lab.cleanup()
    assert requests.get(f"{hooklab.url}/api/bins/{made.id}", timeout=5).status_code == 404
    gone = requests.get(f"{hooklab.url}/api/webhooks/{webhook['id']}", timeout=5)
    assert gone.status_code == 404


# -- the CI user's project, run as a CI job would run it --------------------------------------


def run_project(
    *args: str, cwd: Path = PROJECT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python -m pytest` in the throwaway project, with this interpreter and a clean env."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "HOOKLAB_")) and k != "PYTHONPATH"
    } | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_ci_users_project_passes_and_a_failure_says_what_did_arrive():
    # One run of both folders: tests/ must all pass, failing/ holds one test meant to fail.
    done = run_project("tests", "failing")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 6 passed" in done.stdout, done.stdout
    assert "FAILED failing/test_nothing_arrives.py::" in done.stdout
    assert "No request matching method='POST', json={'order_id': 2} arrived at bin" in done.stdout
    assert "It received 1:" in done.stdout
    assert '{"order_id": 1, "amount": 100, "status": "paid"}' in done.stdout
    # The failure points at the user's line, not at the plugin's loop.
    assert "failing/test_nothing_arrives.py:9: AssertionError" in done.stdout


def test_the_fixture_can_use_a_running_server(live_server):
    done = run_project("tests/test_orders.py", "--hooklab-url", live_server.url, "--hooklab-keep")
    assert done.returncode == 0, done.stdout + done.stderr
    bins = requests.get(f"{live_server.url}/api/bins", timeout=5).json()
    assert "orders" in [b["name"] for b in bins]


def bin_ids(server_url: str) -> set[str]:
    """The ids of every bin of a server."""
    return {b["id"] for b in requests.get(f"{server_url}/api/bins", timeout=5).json()}


def run_housekeeping(server_url: str, tmp_path: Path, *args: str) -> list[str]:
    """Run the project's housekeeping/ tests on a server; the ids of the bins they made."""
    record = tmp_path / "bins-made.txt"
    done = run_project(
        "housekeeping", "--hooklab-url", server_url, *args, env={"BINS_MADE": str(record)}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout, done.stdout
    made = record.read_text().split()
    assert len(made) == 13
    return made


def test_the_bins_of_a_session_are_deleted_by_its_end(live_server, tmp_path):
    # housekeeping/ checks that each test's bins are fresh, empty and its own.
    before = bin_ids(live_server.url)
    made = run_housekeeping(live_server.url, tmp_path)
    # Deleted, the bins kept ready but never handed out as well: the server is as it was.
    assert bin_ids(live_server.url) == before
    for bin_id in made:
        gone = requests.get(f"{live_server.url}/api/bins/{bin_id}", timeout=5)
        assert gone.status_code == 404


def test_hooklab_keep_keeps_what_the_tests_made_and_nothing_else(live_server, tmp_path):
    before = bin_ids(live_server.url)
    made = run_housekeeping(live_server.url, tmp_path, "--hooklab-keep")
    deleted_by_its_test = made[-1]
    assert bin_ids(live_server.url) - before == set(made) - {deleted_by_its_test}


def test_create_bin_hands_out_a_bin_made_before_and_the_end_deletes_the_rest(live_server):
    housekeeper = Housekeeper(Client(live_server.url, lean=True), pool_size=1)
    lab = Hooklab(live_server.url, housekeeper=housekeeper)
    wait_for(housekeeper.ready, what="a bin kept ready")  # not the server's list: made
    ready = bin_ids(live_server.url)  # there before the housekeeper has the answer
    bin = lab.create_bin()
    assert {bin.id} == ready and bin.requests() == []
    named = lab.create_bin(name="with options")  # made when asked, as it asks
    assert named.id not in ready and named.name == "with options"

    lab.cleanup()  # through the housekeeper
    assert housekeeper.close() == 0
    assert bin_ids(live_server.url) == set()  # the bin it had made ready since went too


def test_a_server_whose_bins_expire_gets_no_bins_made_ahead(tmp_path):
    # A bin made ahead would be idle, and expire, sooner than one made when asked for.
    live = start_live_server(make_settings(tmp_path, bin_ttl_s=3600))
    try:
        housekeeper = Housekeeper(Client(live.url, lean=True))
        made = live.create_bin()
        housekeeper.delete_later([made["id"]])  # done after it has read the server's settings
        assert housekeeper.wait_until_deleted(timeout=10)
        assert housekeeper.take_bin() is None and bin_ids(live.url) == set()
        assert housekeeper.close() == 0
    finally:
        live.kill()


def test_the_housekeeper_never_hangs_the_session_on_a_server_that_does_not_answer():
    with socket.socket() as listener:  # accepts connections (the backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        housekeeper = Housekeeper(Client(url, timeout=0.2, lean=True))
        assert housekeeper.take_bin() is None
        housekeeper.delete_later(["a" * 26, "b" * 26])
        assert housekeeper.wait_until_deleted(timeout=0.1) is False
        # The end of the session gives up after its timeout, without an error.
        assert housekeeper.close(timeout=0.1) > 0


def test_the_housekeeper_ignores_a_server_that_is_gone():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    housekeeper = Housekeeper(Client(f"http://127.0.0.1:{port}", lean=True))
    housekeeper.delete_later(["a" * 26])
    assert housekeeper.wait_until_deleted(timeout=10) is True
    assert housekeeper.take_bin() is None  # tests make their own bins, and see the error
    assert housekeeper.close() == 0


@pytest.mark.parametrize("lean", [False, True], ids=["requests", "lean"])
def test_both_ways_of_calling_give_the_same_clear_errors(live_server, lean):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(HooklabError) as failure:
        Client(f"http://127.0.0.1:{port}", lean=lean).health()
    assert failure.value.message == (
        f"cannot reach Hooklab at http://127.0.0.1:{port} — is `hooklab serve` running?"
    )

    client = Client(live_server.url, lean=lean)
    with pytest.raises(HooklabError) as failure:
        client.bin("nope")
    assert (failure.value.message, failure.value.status) == ("No bin with id 'nope'.", 404)
    with pytest.raises(HooklabError) as failure:
        client.create_bin(response={"status": 99})
    assert failure.value.field == "response.status" and failure.value.status == 422
    made = client.create_bin(name="both")
    assert client.bin(made["id"])["name"] == "both"
    client.close()

    with socket.socket() as listener:  # accepts, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(HooklabError) as failure:
            Client(url, timeout=0.2, lean=lean).health()
    assert failure.value.message == f"Hooklab at {url} did not answer GET /api/health within 0.2 s"


def test_threads_may_share_the_fixture_and_its_client(hooklab):
    # Tests that post and wait from worker threads: every call gets a connection to itself.
    bins = [hooklab.create_bin() for _ in range(8)]

    def work(bin) -> int:
        for n in range(5):
            requests.post(bin.url, json={"n": n}, timeout=5)
        for n in range(5):
            assert bin.wait_for(json={"n": n}, timeout=10).json == {"n": n}
        return sum(len(bin.requests()) for _ in range(20))

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, bins)) == [100] * 8


def test_a_lean_client_shared_by_threads_never_mixes_two_calls(live_server):
    client = Client(live_server.url, lean=True)
    made = [client.create_bin(name=f"b{n}")["id"] for n in range(8)]
    try:
        with ThreadPoolExecutor(8) as pool:
            names = list(pool.map(lambda n: client.bin(made[n % 8])["name"], range(800)))
        assert names == [f"b{n % 8}" for n in range(800)]
    finally:
        client.close()


def test_the_lean_client_opens_a_new_connection_when_the_server_closed_its_last():
    # As gunicorn does with a connection idle for longer than its keep-alive.
    closed = threading.Event()
    peers = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # so the client keeps the connection for the next call

        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            peers.append(self.client_address)
            self.send_response(201 if self.command == "POST" else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "11")
            self.end_headers()
            self.wfile.write(b'{"id": "x"}')
            self.close_connection = True  # without saying so

        do_GET = do_POST = answer  # noqa: N815 - http.server's names

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def shutdown_request(self, request) -> None:
            super().shutdown_request(request)
            closed.set()

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = Client(f"http://127.0.0.1:{server.server_port}", lean=True)
        for call in (client.health, client.health, client.create_bin):
            closed.clear()
            assert call() == {"id": "x"}
            closed.wait(5)
        client.close()
        assert len(set(peers)) == 3  # one connection each
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_hooklab_url_fails_clearly():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run_project("tests/test_orders.py", "--hooklab-url", f"http://127.0.0.1:{port}")
    assert done.returncode == 1
    assert f"--hooklab-url: cannot reach Hooklab at http://127.0.0.1:{port}" in done.stdout
    assert "Traceback" not in done.stdout
    assert "During handling of the above exception" not in done.stdout, done.stdout


def test_a_malformed_hooklab_url_fails_in_one_line():
    # Each test printed a traceback through the plugin's internals.
    done = run_project("tests/test_orders.py", "--hooklab-url", "127.0.0.1:8241")
    assert done.returncode == 1
    assert re.search(r"^--hooklab-url: .*'127\.0\.0\.1:8241'.* http://", done.stdout, re.M)
    assert "Traceback" not in done.stdout and "pytest_plugin.py" not in done.stdout, done.stdout


def test_verify_takes_a_secret_as_the_libraries_do_and_says_what_is_wrong():
    secret = generate_secret()
    captured = signed_request(secret, b'{"paid": true}')
    assert captured.verify(secret.removeprefix("whsec_"))  # the base64 alone, as libraries take
    assert not captured.verify(generate_secret().removeprefix("whsec_"))
    wrong = captured.verify("not-a-secret")
    assert not wrong and "not a Standard Webhooks secret: those are whsec_" in wrong.reason
    with pytest.raises(TypeError, match=re.escape('pass webhook["secret"]')):
        captured.verify({"id": 1, "secret": secret})
    with pytest.raises(TypeError, match="takes the secret as text"):
        captured.verify(None)


def test_hooklab_settings_may_give_the_server_a_token_and_a_database(tmp_path):
    db = tmp_path / "kept.db"
    (tmp_path / "conftest.py").write_text(
        "import pytest\n\n\n"
        '@pytest.fixture(scope="session")\n'
        "def hooklab_settings():\n"
        f'    return {{"token": "s3cret-token", "db": {str(db)!r}}}\n'
    )
    (tmp_path / "test_it.py").write_text(
        "import requests\n\n\n"
        "def test_the_fixture_uses_the_token_it_set(hooklab):\n"
        "    bin = hooklab.create_bin()\n"
        '    requests.post(bin.url, json={"n": 1}, timeout=5)\n'
        '    assert bin.wait_for(json={"n": 1}).json == {"n": 1}\n'
        '    assert requests.get(hooklab.url + "/api/bins", timeout=5).status_code == 401\n'
    )
    done = run_project("--hooklab-keep", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert db.exists()  # the database the settings named, not one of the session's
    assert f"hooklab: kept; to look at it: hooklab serve --db {db}" in done.stdout


def test_a_kept_database_outlives_pytests_temporary_folders(tmp_path):
    # It was kept under pytest's temporary base, which pytest prunes after three more runs.
    (tmp_path / "test_it.py").write_text(
        "def test_it(hooklab):\n    hooklab.create_bin(name='kept-one')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HOOKLAB_"))}
    for _ in range(2):  # the second run replaces the first one's database
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "--hooklab-keep", "test_it.py"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    db = tmp_path / ".pytest_cache" / "d" / "hooklab" / "hooklab.db"
    assert f"hooklab: kept; to look at it: hooklab serve --db {db}" in done.stdout
    with sqlite3.connect(db) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM bins")]
    assert names == ["kept-one"]  # this run's only


def test_a_server_that_needs_a_token_names_the_option_that_gives_it(tmp_path):
    live = start_live_server(make_settings(tmp_path, token="s3cret-token"))
    try:
        (tmp_path / "test_it.py").write_text("def test_it(hooklab):\n    hooklab.create_bin()\n")
        done = run_project("--hooklab-url", live.url, cwd=tmp_path)
        assert done.returncode != 0
        assert "it needs an access token: give it with --hooklab-token" in done.stdout
        assert "HOOKLAB_TOKEN" not in done.stdout
        done = run_project(
            "--hooklab-url", live.url, "--hooklab-token", "s3cret-token", cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        live.kill()


def test_the_readme_examples_run(tmp_path):
    # The README's pytest examples, as a user would paste them: shop.py and its tests.
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## The walkthrough", 1)[1]
    walkthrough, shop, tests = re.findall(r"```python\n(.*?)```", section, re.S)[:3]
    assert shop.startswith("# shop.py") and tests.startswith("# tests/test_shop.py")
    (tmp_path / "shop.py").write_text(shop)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_shop.py").write_text(tests + "\n\n" + walkthrough)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\npythonpath = ["."]\nfilterwarnings = ["error"]\n'
    )
    done = run_project(cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


# ---- probing a receiver ---------------------------------------------------------------------


def test_probe_returns_the_report_and_passes_for_a_correct_receiver(hooklab):
    from tests import receivers

    secret = generate_secret()
    with receivers.serve(receivers.correct(secret)) as receiver:
        report = hooklab.probe(receiver.url, secret)
        assert hooklab.assert_receiver_ok(receiver.url, secret).ok is True
    assert report.ok is True and report.failures == []
    assert report.check("stale_timestamp")["status_code"] == 400
    assert "11 of 11 checks passed." in report.card()


def test_a_failing_check_fails_the_test_with_the_report_card(hooklab):
    from tests import receivers

    with receivers.serve(receivers.accepts_everything) as receiver:
        report = hooklab.probe(receiver.url, generate_secret(), timeout_s=5)
        with pytest.raises(AssertionError) as failure:
            hooklab.assert_receiver_ok(receiver.url, generate_secret())
    assert report.ok is False
    message = str(failure.value)
    assert message.startswith("the receiver failed wrong_signature, missing_signature")
    assert "✗ stale_timestamp" in message and "✓ valid_signature" in message
    assert "a correct receiver refuses a timestamp 10 minutes old" in message
    assert "5 of 11 checks passed." in message
    with pytest.raises(AssertionError, match="the receiver failed"):
        report.raise_for_failures()


def test_probe_with_a_bad_secret_says_so(hooklab):
    with pytest.raises(HooklabError, match="hooklab: Secret: a secret starts with whsec_"):
        hooklab.probe("http://127.0.0.1:9/hook", "not-a-secret")


def test_a_failed_wait_for_lists_summaries_not_every_body(hooklab, monkeypatch):
    # It exported the whole bin, every body, to write 20 lines: 100 bodies of 2 MB took a
    # failing test from 0.5 s to 5 s and its process to 937 MB.
    bin = hooklab.create_bin(name="many")
    big = b"x" * 200_000
    for n in range(23):
        requests.post(bin.url + f"/n{n}", data=big if n % 2 else b'{"n": %d}' % n, timeout=5)

    def no_export(*args, **kwargs):
        raise AssertionError("the failure message must not export the bin")

    monkeypatch.setattr(hooklab.client, "export", no_export)
    with pytest.raises(AssertionError) as failure:
        bin.wait_for(path="/nope", timeout=0)
    lines = str(failure.value).splitlines()
    assert lines[1] == "It received 23 (the newest 20):"
    assert lines[2] == "  … 3 older not shown"
    assert lines[3].startswith("  #") and " POST /b/" in lines[3] and "/n3 " in lines[3]
    assert lines[3].endswith("<200000 bytes>")  # a big body: described, not read
    assert lines[4].endswith('{"n": 4}')  # a small one: previewed
    assert len(lines) == 23


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"timeout": float("inf")}, ValueError, "takes 0 to 86400 seconds, not inf"),
        ({"timeout": 1e10}, ValueError, "not 10000000000.0"),
        ({"timeout": float("nan")}, ValueError, "not nan"),
        ({"timeout": -1}, ValueError, "not -1"),
        ({"timeout": "1"}, TypeError, "takes seconds as a number, not '1'"),
        ({"timeout": None}, TypeError, "not None"),
        ({"method": 5}, TypeError, "method name such as 'POST', not 5"),
        ({"path": b"/x"}, TypeError, "path such as '/orders/*'"),
        ({"predicate": "yes"}, TypeError, "a function of the request"),
    ],
)
@pytest.mark.parametrize("made", ["ready", "named"])
def test_wait_for_refuses_arguments_it_cannot_use_the_same_on_every_bin(
    hooklab, kwargs, error, message, made
):
    # A ready bin (made ahead, with a long poll sent) raised OverflowError or AttributeError
    # from inside the client, a named one (made on the spot) did not.
    bin = hooklab.create_bin() if made == "ready" else hooklab.create_bin(name="named")
    with pytest.raises(error, match=re.escape(message)):
        bin.wait_for(**kwargs)
