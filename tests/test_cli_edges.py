"""The CLI at its edges, against real servers: a --server that is not Hooklab, ids that cannot
be ids, numbers out of range, groups without a command, `webhook rm` of missing ids, and the
pytest fixture's tracebacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from hooklab.cli.main import cli
from hooklab.client.http import Client, HooklabError
from tests.conftest import LiveServer, make_settings, start_live_server

HOOKLAB = str(Path(sys.executable).parent / "hooklab")
BIG = str(2**64)
SECRET = "whsec_" + "A" * 43 + "="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    """One real Hooklab server for the module."""
    live = start_live_server(make_settings(tmp_path_factory.mktemp("cli_edges")))
    yield live
    live.kill()


class OtherApp:
    """A throwaway HTTP server on 127.0.0.1 that is not Hooklab: every request gets 200 with
    `body` as `content_type` (an app's HTML page, or JSON of another shape)."""

    def __init__(self, body: bytes, content_type: str) -> None:
        answer = (body, content_type)

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", answer[1])
                self.send_header("Content-Length", str(len(answer[0])))
                self.end_headers()
                self.wfile.write(answer[0])

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def html_app() -> Iterator[OtherApp]:
    app = OtherApp(b"<!doctype html><html><body>My app</body></html>", "text/html; charset=utf-8")
    yield app
    app.close()


@pytest.fixture(scope="module")
def json_app() -> Iterator[OtherApp]:
    app = OtherApp(b'{"hello": "world"}', "application/json")
    yield app
    app.close()


def invoke(url: str, *args: str, input=None):
    """The CLI in-process against `url` (its exceptions reach the test)."""
    env = {"HOOKLAB_SERVER": url, "HOOKLAB_TOKEN": None}
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


@pytest.fixture
def run(server):
    def call(*args: str, input=None):
        return invoke(server.url, *args, input=input)

    return call


def one_error_line(result) -> str:
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "unexpected" not in lines[0] and "Traceback" not in result.output
    return lines[0]


# -- 1. a server that is not Hooklab --------------------------------------------------------------

BIN = "a" * 26


def test_an_html_answer_is_named_like_a_500_is(html_app):
    # The installed script, as a user runs it: one line, exit 1, no "unexpected JSONDecodeError".
    env = {**os.environ, "HOOKLAB_SERVER": html_app.url}
    env.pop("HOOKLAB_TOKEN", None)
    done = subprocess.run(
        [HOOKLAB, "bin", "list"], capture_output=True, text=True, env=env, timeout=30
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: {html_app.url} answered 200 with text/html, not JSON, to GET /api/bins "
        "(is it a Hooklab server?)\n"
    )


@pytest.mark.parametrize(
    ("args", "call"),
    [
        (["bin", "create"], "POST /api/bins"),
        (["bin", "show", BIN], f"GET /api/bins/{BIN}"),
        (["bin", "requests", BIN], f"GET /api/bins/{BIN}/requests"),
        (["bin", "request", BIN, "1"], f"GET /api/bins/{BIN}/requests/1"),
        (["bin", "export", BIN], f"GET /api/bins/{BIN}/export"),
        (["bin", "tail", BIN, "--count", "1", "--timeout", "1"], f"GET /api/bins/{BIN}"),
        (["webhook", "list"], "GET /api/webhooks"),
        (["webhook", "test", "1"], "POST /api/webhooks/1/test"),
        (["webhook", "deliveries", "1"], "GET /api/webhooks/1/deliveries"),
        (["events"], "GET /api/events"),
        (["fire", "payment_received"], "GET /api/events/payment_received"),
        (["probe", "http://127.0.0.1:9/", "--secret", SECRET], "POST /api/probe"),
    ],
)
def test_every_command_names_a_server_that_answers_html(html_app, args, call):
    line = one_error_line(result := invoke(html_app.url, *args))
    assert result.exit_code == 1
    assert line == (
        f"Error: {html_app.url} answered 200 with text/html, not JSON, to {call} "
        "(is it a Hooklab server?)"
    )


def test_raw_bytes_from_an_html_server_are_not_passed_off_as_a_body(html_app):
    result = invoke(html_app.url, "bin", "request", BIN, "1", "--raw")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "answered 200 with text/html, not the body bytes" in line


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        (["bin", "list"], "where a list of bins belongs"),
        (["bin", "create"], "no 'id' in it"),
        (["bin", "show", BIN], "no 'id' in it"),
        (["webhook", "list"], "where a list of webhooks belongs"),
        (["webhook", "test", "1"], "no 'ok' in it"),
        (["webhook", "show", "1"], "no 'id' in it"),
        (["events", "show", "payment_received"], "no 'slug' in it"),
        (["bin", "rm", BIN], "no 'deleted' in it"),
    ],
)
def test_json_of_another_shape_is_named_too(json_app, args, detail):
    result = invoke(json_app.url, *args)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"{json_app.url} answered " in line
    assert "with JSON that Hooklab does not send (" in line and detail in line
    assert "the receiver answered None" not in result.output


@pytest.mark.parametrize("lean", [False, True])
def test_the_client_raises_a_hooklab_error_for_a_page(html_app, json_app, lean):
    # The pytest fixture's Client (lean: its own connection) as well as the CLI's.
    for url in (html_app.url, json_app.url):
        client = Client(url, lean=lean)
        try:
            with pytest.raises(HooklabError) as refused:
                client.bins()
            with pytest.raises(HooklabError) as shape:
                client.create_bin()
        finally:
            client.close()
        if url == html_app.url:
            assert "with text/html, not JSON, to GET /api/bins" in refused.value.message
        else:
            assert "with JSON that Hooklab does not send (no 'id' in it)" in shape.value.message
        assert refused.value.code == shape.value.code == "not_hooklab"


# -- 2. and 3. ids that cannot be ids -------------------------------------------------------------


@pytest.mark.parametrize("request_id", ["abc", "NaN", "1e309", "-1", "1.5", "+1", "١", "15/raw"])
@pytest.mark.parametrize("command", ["request", "check"])
def test_a_request_id_that_is_not_a_whole_number_is_refused_before_any_call(command, request_id):
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: no call may be made
    result = invoke(nowhere, "bin", command, BIN, "--", request_id)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "'REQUEST_ID': must be a whole number or `latest`" in line
    assert repr(request_id) in line
    replayed = invoke(nowhere, "replay", "--to", "http://127.0.0.1:9/", BIN, "--", request_id)
    assert replayed.exit_code == 2 and "'REQUEST_ID'" in replayed.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["bin", "show", f"{BIN}/requests"],
        ["bin", "show", ".."],
        ["bin", "show", ""],
        ["bin", "requests", f"{BIN}/export"],
        ["bin", "tail", f"{BIN}?after=5"],
        ["bin", "clear", f"{BIN}/requests/1"],
        ["bin", "rm", BIN, f"{BIN}/requests"],
        ["bin", "request", f"{BIN}/x", "1"],
        ["webhook", "add", "--name", "ab", "--bin", f"{BIN}/requests", "--event", "*"],
        ["listen", f"{BIN}/requests", "--forward-to", "http://127.0.0.1:9/"],
    ],
)
def test_a_bin_id_with_a_slash_is_refused_before_any_call(args):
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = invoke(nowhere, *args)
    assert result.exit_code == 2, result.output
    assert "is not a bin id." in one_error_line(result)


@pytest.mark.parametrize(
    "args",
    [
        ["webhook", "show", "1/deliveries"],
        ["webhook", "test", "1/deliveries"],
        ["webhook", "deliveries", "1/test"],
        ["webhook", "rm", "1/deliveries"],
        ["webhook", "rm", "2", ".."],
        ["webhook", "redeliver", "1/redeliver"],
        ["webhook", "show", "NaN"],
    ],
)
def test_a_webhook_or_delivery_id_that_is_not_a_number_is_refused(args):
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = invoke(nowhere, *args)
    assert result.exit_code == 2, result.output
    assert "must be a whole number, not " in one_error_line(result)


def test_ids_with_a_slash_reach_no_other_route(run, server):
    created = server.create_bin()
    requests.post(created["url"], json={"n": 1}, timeout=5)
    hook = run("webhook", "add", "-q", "--name", "kept", "--bin", created["id"], "--event", "*")
    webhook_id = hook.stdout.strip()
    shown = run("bin", "show", f"{created['id']}/requests")
    assert shown.exit_code == 2 and "is not a bin id" in shown.stderr
    raw = run("bin", "request", created["id"], "1/raw")
    assert raw.exit_code == 2 and "REQUEST_ID" in raw.stderr
    removed = run("webhook", "rm", f"{webhook_id}/deliveries")
    assert removed.exit_code == 2 and "method is not allowed" not in removed.output
    assert run("webhook", "show", webhook_id).exit_code == 0  # nothing was deleted
    assert run("bin", "rm", created["id"], f"{created['id']}/x").exit_code == 2
    assert run("bin", "show", created["id"]).exit_code == 0
    run("webhook", "rm", webhook_id)


def test_the_client_checks_ids_before_building_a_url():
    client = Client(f"http://127.0.0.1:{free_port()}")  # never called
    for call, args in [
        (client.bin, ("x/requests",)),
        (client.request, ("a" * 26, "15/raw")),
        (client.raw_body, ("a" * 26, "abc")),
        (client.webhook, ("1/deliveries",)),
        (client.delete_webhook, ("..",)),
        (client.redeliver, ("1/redeliver",)),
        (client.event, ("payment_received/schema",)),
        (client.fire, ("payment_received/check",)),
        (client.delete_bins, (["a" * 26, "b/c"],)),
    ]:
        with pytest.raises(HooklabError) as refused:
            call(*args)
        assert refused.value.code == "bad_id", (call, refused.value.message)
        assert "cannot reach" not in refused.value.message
    client.close()


def test_a_whole_request_id_still_works_and_latest_too(run, server):
    created = server.create_bin()
    requests.post(created["url"], data=b"hello", timeout=5)
    latest = run("bin", "request", created["id"], "latest", "--json")
    request_id = json.loads(latest.stdout)["id"]
    by_id = run("bin", "request", created["id"], f"00{request_id}", "--raw")
    assert by_id.exit_code == 0 and by_id.stdout_bytes == b"hello"
    missing = run("bin", "request", created["id"], BIG)
    assert missing.exit_code == 1 and f"No captured request {BIG}" in missing.stderr


# -- 4. and 7. numbers --------------------------------------------------------------------------

BAD_NUMBERS = ["NaN", "inf", "-inf", "1e309", BIG, "-1", "ten"]
URL = "http://127.0.0.1:9/"
NUMBER_OPTIONS = [
    (["bin", "requests", BIN], "--limit"),
    (["bin", "requests", BIN], "--after"),
    (["bin", "tail", BIN], "--after"),
    (["bin", "tail", BIN, "--count", "1"], "--timeout"),
    (["bin", "tail", BIN, "--timeout", "1"], "--count"),
    (["bin", "create"], "--delay-ms"),
    (["bin", "create"], "--rules-seed"),
    (["bin", "update", BIN], "--delay-ms"),
    (["fire", "payment_received"], "--count"),
    (["webhook", "add", "--name", "ab", "--url", URL, "--event", "*"], "--timeout"),
    (["probe", URL, "--secret", SECRET], "--timeout"),
    (["replay", BIN, "1", "--to", URL], "--timeout"),
    (["listen", BIN, "--forward-to", URL], "--after"),
    (["listen", BIN, "--forward-to", URL], "--timeout"),
]


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize(
    ("args", "option"), NUMBER_OPTIONS, ids=[f"{' '.join(a[:2])} {o}" for a, o in NUMBER_OPTIONS]
)
def test_every_number_option_refuses_what_the_server_would_not_take(args, option, value):
    # Refused by the CLI (exit 2, naming the option), so nothing is sent: nothing listens here.
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = invoke(nowhere, *args, f"{option}={value}")
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in one_error_line(result)


def test_demo_refuses_a_port_out_of_range():
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "HOOKLAB_SERVER": nowhere}
    env.pop("HOOKLAB_TOKEN", None)
    for port in (BIG, "65536", "NaN"):
        done = subprocess.run(
            [HOOKLAB, "demo", "--start", "--exit", "--port", port],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "Invalid value for '--port'" in done.stderr
        assert "unexpected" not in done.stderr


@pytest.mark.parametrize("limit", ["0", BIG, "NaN", "1001"])
def test_limit_out_of_range_is_exit_2_like_nan(run, server, limit):
    created = server.create_bin()
    result = run("bin", "requests", created["id"], "--limit", limit)
    assert result.exit_code == 2, result.output
    assert "'--limit'" in one_error_line(result)
    assert run("bin", "requests", created["id"], "--limit", "1000").exit_code == 0


def test_the_bounds_are_in_the_help():
    def help_text(*args: str) -> str:
        return " ".join(CliRunner().invoke(cli, [*args, "--help"]).output.split())

    assert "Fire it this many times (1 to 100000)" in help_text("fire")
    assert "At most this many (1 to 1000)" in help_text("bin", "requests")
    assert "Stop after this long (at most a day)" in help_text("bin", "tail")
    assert "(0.1 to 60)" in help_text("webhook", "add")


def test_fire_count_far_too_large_is_refused(run):
    result = run("fire", "payment_received", "--count", BIG)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "'--count': must be at most 100000" in line and "OverflowError" not in line


def test_bin_tail_refuses_a_timeout_that_never_ends(server):
    created = server.create_bin()
    env = {**os.environ, "HOOKLAB_SERVER": server.url}
    env.pop("HOOKLAB_TOKEN", None)
    for timeout in ("NaN", "1e309", "inf"):
        done = subprocess.run(
            [HOOKLAB, "bin", "tail", created["id"], "--count", "1", "--timeout", timeout],
            capture_output=True, text=True, env=env, timeout=30,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "Invalid value for '--timeout'" in done.stderr


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("NaN", "NaN is not a JSON number"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": Infinity}', "Infinity is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ('{"a": 1e309}', "the number 1e309 is too large"),
    ],
)
def test_data_that_is_not_strict_json_is_named_as_such(run, data, why):
    result = run("fire", "payment_received", "--data", data)
    assert result.exit_code == 1
    assert one_error_line(result) == f"Error: --data is not valid JSON: {why}"
    checked = run("events", "check", "payment_received", "--data", data)
    assert checked.exit_code == 1
    assert one_error_line(checked) == f"Error: --data is not valid JSON: {why}"


def test_data_from_a_file_is_read_strictly_too(run, tmp_path):
    payload = tmp_path / "p.json"
    payload.write_text('{"amount": NaN}')
    result = run("fire", "payment_received", "--data", f"@{payload}")
    assert result.exit_code == 1
    assert f"--data in {payload} is not valid JSON: NaN is not a JSON number" in result.stderr


# -- 5. a group without a command --------------------------------------------------------------


@pytest.mark.parametrize("group", ["bin", "webhook"])
def test_a_group_without_a_command_shows_its_usage_like_plain_hooklab(group):
    def hooklab(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([HOOKLAB, *args], capture_output=True, text=True, timeout=30)

    plain, result = hooklab(), hooklab(group)
    assert result.returncode == plain.returncode == 2
    assert plain.stderr.startswith("Usage: hooklab [OPTIONS] COMMAND [ARGS]...\n")
    assert result.stderr.startswith(f"Usage: hooklab {group} [OPTIONS] COMMAND [ARGS]...\n")
    assert "Error" not in result.stderr and "(see `" not in result.stderr
    assert "Commands:" in result.stderr
    assert result.stdout == plain.stdout == ""


# -- 6. webhook rm of missing ids -----------------------------------------------------------------


def test_webhook_rm_deletes_those_found_and_names_the_rest(run, server):
    target = server.create_bin()
    ids = [
        run(
            "webhook", "add", "-q", "--name", f"h{n}", "--bin", target["id"], "--event", "*"
        ).stdout.strip()
        for n in range(2)
    ]
    result = run("webhook", "rm", "99999", ids[0], "88888", ids[1], ids[0])
    assert result.exit_code == 1
    assert result.stdout == f"Deleted webhook {ids[0]}\nDeleted webhook {ids[1]}\n"
    assert result.stderr == "Error: No webhook with id '99999', '88888'.\n"
    for webhook_id in ids:
        gone = requests.get(f"{server.url}/api/webhooks/{webhook_id}", timeout=5)
        assert gone.status_code == 404


# -- 7. the API's wording, as the CLI's --------------------------------------------------------


def test_bin_check_without_an_event_names_the_option(run, server):
    created = server.create_bin()
    requests.post(created["url"], json={"amount": 1}, timeout=5)
    result = run("bin", "check", created["id"], "latest")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "--event SLUG" in line and "?event=" not in line
    assert "names no event (it has no X-Hooklab-Event header)" in line


# -- 8. the pytest fixture's tracebacks ------------------------------------------------------------

USER_TESTS = """
import requests


def test_a_bad_status(hooklab):
    hooklab.create_bin(status=99999)


def test_a_bad_event(hooklab):
    hooklab.add_webhook(hooklab.create_bin(), event="nosuch_event")


def test_a_missing_webhook(hooklab):
    hooklab.deliveries(999999)


def test_a_request_that_names_no_event(hooklab):
    bin = hooklab.create_bin()
    requests.post(bin.url, json={"a": 1}, timeout=5)
    bin.wait_for().check()
"""


def test_fixture_errors_point_at_the_test_not_at_the_plugin(server, tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "HOOKLAB_")) and k != "PYTHONPATH"
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_user.py",
         "--hooklab-url", server.url],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = done.stdout
    assert "4 failed" in out, out + done.stderr
    assert "pytest_plugin.py" not in out, out
    assert "client/http.py" not in out, out
    assert "hooklab: response.status must be a whole number from 200 to 599 (a 1xx status" in out
    assert "nosuch_event" in out
    assert "hooklab: No webhook with id '999999'." in out
    assert 'as in request.check("<slug>")' in out and "?event=" not in out
    # Each failure shows the test's own line.
    for line in (
        "hooklab.create_bin(status=99999)",
        'hooklab.add_webhook(hooklab.create_bin(), event="nosuch_event")',
        "hooklab.deliveries(999999)",
        "bin.wait_for().check()",
    ):
        assert f">       {line}" in out, line


def test_an_empty_listing_says_whether_nothing_came_or_nothing_matched(run, server):
    made = server.create_bin()
    assert "No requests yet." in run("bin", "requests", made["id"]).output
    requests.post(made["url"], data=b"an invoice", timeout=5)
    result = run("bin", "requests", made["id"], "--grep", '"ok payment"')
    assert result.exit_code == 0
    assert "No request matches '\"ok payment\"'." in result.output
    assert "No requests yet" not in result.output
