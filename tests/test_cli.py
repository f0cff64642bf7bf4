"""The `hooklab` CLI against a real server: bins, tail, export, replay, webhooks, fire, demo."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner

from hooklab.app.factory import create_app
from hooklab.cli.common import json_text, visible
from hooklab.cli.main import cli
from tests.conftest import make_settings, start_live_server

HOOKLAB = str(Path(sys.executable).parent / "hooklab")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def run(live_server):
    """Invoke the CLI in-process against the live server; returns click's Result."""
    runner = CliRunner()

    def invoke(*args: str, input=None, env=None):
        environ = {"HOOKLAB_SERVER": live_server.url, "HOOKLAB_TOKEN": None, **(env or {})}
        return runner.invoke(cli, list(args), input=input, env=environ, catch_exceptions=False)

    return invoke


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [p for p, _ in all_commands(cli)], ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_server_and_token_may_come_before_the_command(live_server):
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {"HOOKLAB_SERVER": nowhere, "HOOKLAB_TOKEN": None}
    created = CliRunner().invoke(
        cli, ["--server", live_server.url, "bin", "create", "--json"], env=env
    )
    assert created.exit_code == 0, created.output  # before the command: beats the environment
    bin_id = json.loads(created.stdout)["id"]
    listed = CliRunner().invoke(cli, ["--server", live_server.url, "bin", "list"], env=env)
    assert bin_id in listed.stdout
    # After the command it wins over the one before it.
    result = CliRunner().invoke(
        cli, ["--server", live_server.url, "bin", "list", "--server", nowhere], env=env
    )
    assert result.exit_code == 1 and nowhere in result.stderr


def test_a_server_that_is_not_running_is_one_line_and_exit_1():
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli, ["bin", "list", "--server", url], env={"HOOKLAB_TOKEN": None})
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: cannot reach Hooklab at {url} — is `hooklab serve` running?"
    )
    assert result.stdout == ""


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
        done = subprocess.run(
            [HOOKLAB, "serve", "--port", str(port), "--db", str(tmp_path / "h.db")],
            capture_output=True, text=True, env=env, timeout=20,
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""  # no "Hooklab on …" banner for an address it never got
    assert done.stderr == (
        f"Error: cannot listen on 127.0.0.1:{port}: the address is in use "
        "(is `hooklab serve` already running? pick another --port)\n"
    )


def test_serve_refuses_a_port_out_of_range(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["serve", "--port", "80000", "--db", str(tmp_path / "h.db")],
        env={"HOOKLAB_PORT": None},
    )
    assert result.exit_code == 2
    assert "--port: must be from 0 to 65535, not 80000" in result.stderr
    assert "OverflowError" not in result.output


def test_the_installed_script_never_shows_a_traceback():
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "HOOKLAB_SERVER": url}
    env.pop("HOOKLAB_TOKEN", None)
    done = subprocess.run(
        [HOOKLAB, "bin", "show", "nope"], capture_output=True, text=True, env=env, timeout=20
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert "cannot reach Hooklab" in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope"], "Error: No such command 'nope'. (see `hooklab --help`)"),
        (
            ["bin", "create", "--header", "x"],
            "Error: Invalid value for '--header': 'x' is not NAME:VALUE "
            "(see `hooklab bin create --help`)",
        ),
        (
            ["webhook", "add", "--name", "xy", "--url", "http://127.0.0.1:9/"],
            "Error: Missing option '--event'. (see `hooklab webhook add --help`)",
        ),
        (["bin", "show"], "Error: Missing argument 'BIN_ID'. (see `hooklab bin show --help`)"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, message):
    result = CliRunner().invoke(cli, args, prog_name="hooklab")
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_a_malformed_server_url_is_a_clear_error():
    result = CliRunner().invoke(cli, ["bin", "list", "--server", "localhost:8000"])
    assert result.exit_code == 2  # a usage error (tests/test_cli_webhooks.py has more)
    assert "--server (or HOOKLAB_SERVER): 'localhost:8000' is not an http://" in result.stderr


def test_bin_create_prints_the_capture_url_and_the_bin_answers_as_configured(run):
    result = run(
        "bin", "create", "--name", "payments", "--status", "202",
        "--header", "X-Env: test", "--body", "accepted", "--delay-ms", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert "\n" not in url and url.startswith("http://127.0.0.1:") and "/b/" in url
    assert "Inspect it at http://" in result.stderr

    answer = requests.post(url + "/hook", data=b"x", timeout=5)
    assert answer.status_code == 202
    assert answer.headers["X-Env"] == "test"
    assert answer.text == "accepted"

    bin_id = url.rsplit("/", 1)[1]
    shown = json.loads(run("bin", "show", bin_id, "--json").stdout)
    assert shown["name"] == "payments"
    assert shown["response"]["status"] == 202
    text = run("bin", "show", bin_id).stdout
    assert "payments" in text and "X-Env: test" in text and url in text


def test_bin_create_body_from_a_file(run, tmp_path):
    body = tmp_path / "body.json"
    body.write_text('{"ok": true}')
    created = json.loads(run("bin", "create", "--body", f"@{body}", "--json").stdout)
    assert requests.get(created["url"], timeout=5).text == '{"ok": true}'


@pytest.mark.parametrize(
    "args, message",
    [
        (["--header", "no-colon"], "is not NAME:VALUE"),
        (["--status", "99"], "response.status must be a whole number from 200 to 599"),
        (["--secret", "plain"], "secret"),
        (["--body", "@/nonexistent/file"], "cannot read /nonexistent/file"),
    ],
)
def test_bin_create_refuses_bad_options_in_one_line(run, args, message):
    result = run("bin", "create", *args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_long_name_is_cut_in_tables_but_ids_and_urls_are_whole(run, live_server):
    name = "x" * 200
    created = live_server.create_bin(name=name)
    hook = ["--name", "é" * 150, "--url", created["url"], "--event", "*"]
    added = run("webhook", "add", "-q", *hook)
    webhook_id = added.stdout.strip()
    for table in (run("bin", "list").stdout, run("webhook", "list").stdout):
        header, row = table.splitlines()
        assert len(row) < 160, row  # not padded to the 200-character name
        assert "…" in row
    bins_row = run("bin", "list").stdout.splitlines()[1]
    assert bins_row.startswith(created["id"]) and bins_row.endswith(created["url"])
    assert "x" * 39 + "…" in bins_row and "x" * 40 not in bins_row
    webhooks_row = run("webhook", "list").stdout.splitlines()[1]
    assert webhooks_row.startswith(webhook_id) and webhooks_row.endswith(created["url"])
    shown = json.loads(run("bin", "list", "--json").stdout)
    assert shown[0]["name"] == name  # --json keeps the whole name


def test_a_server_on_this_machine_is_never_reached_through_a_proxy(live_server):
    # An exported proxy (here one that refuses every connection) is for other hosts.
    env = {**os.environ, "HOOKLAB_SERVER": live_server.url}
    env |= {"HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    env.pop("NO_PROXY", None), env.pop("no_proxy", None)
    done = subprocess.run(
        [HOOKLAB, "bin", "create", "--name", "via no proxy"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(live_server.url + "/b/")


def test_bin_list_requests_and_one_request(run, live_server):
    created = live_server.create_bin(name="listed")
    requests.post(created["url"] + "/orders?x=1", json={"order": 7}, timeout=5)
    requests.put(created["url"], data=b"\xff\xfe binary", timeout=5)

    listed = run("bin", "list")
    assert created["id"] in listed.stdout and "listed" in listed.stdout
    assert [b["id"] for b in json.loads(run("bin", "list", "--json").stdout)] == [created["id"]]

    table = run("bin", "requests", created["id"]).stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "RECEIVED", "METHOD", "PATH"]
    assert "PUT" in table[1] and "POST" in table[2]  # newest first
    assert f"/b/{created['id']}/orders?x=1" in table[2]

    summaries = json.loads(run("bin", "requests", created["id"], "--json").stdout)
    assert [s["method"] for s in summaries] == ["PUT", "POST"]

    post = run("bin", "request", created["id"], str(summaries[1]["id"])).stdout
    assert post.startswith(f"POST /b/{created['id']}/orders?x=1 HTTP/1.1\n")
    assert '"order": 7' in post

    latest = run("bin", "request", created["id"], "latest")
    assert "binary data" in latest.stdout and "--raw" in latest.stdout

    raw = CliRunner().invoke(
        cli,
        ["bin", "request", created["id"], "latest", "--raw", "--server", live_server.url],
        env={"HOOKLAB_TOKEN": None},
    )
    assert raw.stdout_bytes == b"\xff\xfe binary"


def test_bin_request_lays_out_a_json_body_token_for_token(run, live_server):
    # It printed json.dumps of the parsed body: a duplicate key, 1E2, -0 and the precision of
    # 0.1000…0555 silently changed, misleading anyone checking a signature by eye.
    created = live_server.create_bin()
    body = b'{"a":1,"a":2,"e":1E2,"n":-0,"p":0.1000000000000000055511151231257827,"u":"\\u00e9"}'
    requests.post(
        created["url"], data=body, headers={"Content-Type": "application/json"}, timeout=5
    )
    shown = run("bin", "request", created["id"], "latest").stdout
    kept = ['  "a": 1,\n  "a": 2,', '"e": 1E2', '"n": -0', "0.1000000000000000055511151231257827"]
    for line in [*kept, '"u": "\\u00e9"']:
        assert line in shown, shown
    assert "only whitespace changed; --raw for the bytes" in shown


def test_errors_from_the_api_are_one_line(run):
    result = run("bin", "show", "a" * 26)
    assert result.exit_code == 1
    assert result.stderr == f"Error: No bin with id '{'a' * 26}'.\n"
    missing = run("bin", "request", "a" * 26, "latest")
    assert missing.exit_code == 1 and "No bin" in missing.stderr


def test_bin_export_clear_and_rm(run, live_server, tmp_path):
    created = live_server.create_bin()
    requests.post(created["url"], json={"n": 1}, timeout=5)

    har_file = tmp_path / "bin.har"
    result = run("bin", "export", created["id"], "--format", "har", "-o", str(har_file))
    assert result.exit_code == 0, result.output
    har = json.loads(har_file.read_text())
    assert har["log"]["entries"][0]["request"]["method"] == "POST"

    exported = json.loads(run("bin", "export", created["id"]).stdout)
    assert exported[0]["json"] == {"n": 1}

    assert run("bin", "clear", created["id"]).exit_code == 0
    assert json.loads(run("bin", "requests", created["id"], "--json").stdout) == []

    assert run("bin", "rm", created["id"]).stdout == f"Deleted bin {created['id']}\n"
    assert run("bin", "show", created["id"]).exit_code == 1


def test_bin_tail_prints_requests_as_they_arrive(live_server):
    created = live_server.create_bin()
    requests.post(created["url"] + "/first", json={"n": 1}, timeout=5)
    tail = popen_tail(
        live_server, created["id"], "--after", "0", "--count", "2", "--json", "--full"
    )
    try:
        # The replayed first request is printed: the tail is connected, and now waits.
        first = json.loads(tail.stdout.readline())
        requests.post(created["url"] + "/second", json={"n": 2}, timeout=5)
        out, err = tail.communicate(timeout=15)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0, err
    lines = [first] + [json.loads(line) for line in out.splitlines()]
    assert [line["json"] for line in lines] == [{"n": 1}, {"n": 2}]
    assert lines[1]["subpath"] == "/second"


def test_bin_tail_json_prints_requests_only_and_notices_on_stderr(live_server):
    # `{"type": "cleared"}` was a line of stdout: `--count 1 --json | jq .method` read null.
    created = live_server.create_bin()
    requests.post(created["url"] + "/first", data="1", timeout=5)
    tail = popen_tail(live_server, created["id"], "--after", "0", "--count", "2", "--json")
    try:
        assert json.loads(tail.stdout.readline())["subpath"] == "/first"  # connected
        requests.delete(f"{live_server.url}/api/bins/{created['id']}/requests", timeout=5)
        requests.post(created["url"] + "/second", data="2", timeout=5)
        out, err = tail.communicate(timeout=15)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0, err
    assert [json.loads(line)["subpath"] for line in out.splitlines()] == ["/second"]
    assert "the bin was cleared" in err


def popen_tail(live_server, bin_id: str, *options: str) -> subprocess.Popen:
    """`hooklab bin tail BIN_ID OPTIONS…` in a process of its own, against the live server."""
    env = {**os.environ, "HOOKLAB_SERVER": live_server.url, "PYTHONUNBUFFERED": "1"}
    env.pop("HOOKLAB_TOKEN", None)
    return subprocess.Popen(
        [HOOKLAB, "bin", "tail", bin_id, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def start_tail(live_server, bin_id: str, *options: str) -> subprocess.Popen:
    """`hooklab bin tail` in a process of its own, once it says it is connected."""
    tail = popen_tail(live_server, bin_id, *options)
    assert "Waiting for requests" in tail.stderr.readline()
    return tail


def tail_until_deleted(live_server, *options: str) -> tuple[int, str, str]:
    """`bin tail` of a new bin, which is then deleted: (exit code, stderr, the bin's id)."""
    created = live_server.create_bin()
    tail = start_tail(live_server, created["id"], *options)
    try:
        requests.delete(f"{live_server.url}/api/bins/{created['id']}", timeout=5)
        _, err = tail.communicate(timeout=10)
    finally:
        if tail.poll() is None:
            tail.kill()
    return tail.returncode, err, created["id"]


def test_bin_tail_stops_when_the_bin_is_deleted(live_server):
    code, err, _ = tail_until_deleted(live_server)
    assert code == 0, err
    assert "the bin was deleted" in err and "Traceback" not in err


def test_bin_tail_stops_cleanly_on_ctrl_c(live_server):
    created = live_server.create_bin()
    tail = start_tail(live_server, created["id"])
    try:
        requests.post(created["url"] + "/live", data="hello", timeout=5)
        line = tail.stdout.readline()
        assert "POST" in line and f"/b/{created['id']}/live" in line
        tail.send_signal(signal.SIGINT)
        out, err = tail.communicate(timeout=10)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0
    assert "Traceback" not in err
    assert "Stopped." in err


def test_bin_tail_waiting_for_a_count_fails_when_the_bin_is_deleted_or_it_is_stopped(
    live_server,
):
    # A script's wait that ends short of --count is a failure however it ends.
    code, err, bin_id = tail_until_deleted(live_server, "--count", "1", "--timeout", "30")
    assert code == 1, err
    assert "the bin was deleted" in err
    assert f"Error: the bin was deleted: only 0 of 1 requests arrived at bin {bin_id}" in err

    created = live_server.create_bin()
    tail = start_tail(live_server, created["id"], "--count", "3")
    try:
        requests.post(created["url"] + "/one", data="1", timeout=5)
        assert "/one" in tail.stdout.readline()
        tail.send_signal(signal.SIGINT)
        out, err = tail.communicate(timeout=10)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 1, err
    assert f"Error: stopped (Ctrl-C): only 1 of 3 requests arrived at bin {created['id']}" in err
    assert "Traceback" not in err


def test_bin_tail_with_a_timeout_gives_up_with_exit_1(run, live_server):
    # For CI: waiting for the next request must not hang the job when nothing comes.
    created = live_server.create_bin()
    nothing = run("bin", "tail", created["id"], "--count", "1", "--timeout", "0.3", "--json")
    assert nothing.exit_code == 1
    assert nothing.stdout == ""
    assert nothing.stderr == f"Error: no request arrived at bin {created['id']} within 0.3 s\n"

    requests.post(created["url"] + "/one", data="1", timeout=5)
    short = run("bin", "tail", created["id"], "--after", "0", "--count", "2", "--timeout", "0.3")
    assert short.exit_code == 1
    assert f"/b/{created['id']}/one" in short.stdout
    assert f"only 1 of 2 requests arrived at bin {created['id']} within 0.3 s" in short.stderr

    # Without --count it follows for that long, and something coming is a success.
    # (Long enough for a busy machine to connect and replay; it follows for all of it.)
    followed = run("bin", "tail", created["id"], "--after", "0", "--timeout", "2")
    assert followed.exit_code == 0, followed.output
    assert f"/b/{created['id']}/one" in followed.stdout

    enough = run("bin", "tail", created["id"], "--after", "0", "--count", "1", "--timeout", "5")
    assert enough.exit_code == 0, enough.output

    bad = run("bin", "tail", created["id"], "--timeout", "0")
    assert bad.exit_code == 2


def test_bin_tail_of_a_missing_bin(run):
    result = run("bin", "tail", "b" * 26)
    assert result.exit_code == 1
    assert "No bin with id" in result.stderr


def send_raw(url: str, method: str, headers: list[tuple[str, str]], body: bytes) -> None:
    """Send a request with exactly these headers (http.client adds only Host and length)."""
    parts = requests.utils.urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.putrequest(method, parts.path, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    conn.getresponse().read()
    conn.close()


def test_replay_resends_body_and_headers_byte_exact(run, live_server):
    source = live_server.create_bin()
    target = live_server.create_bin()
    body = b'{"amount": 4200}\n\xff\x00 not utf-8'
    send_raw(
        source["url"] + "/stripe?a=1",
        "PATCH",
        [
            ("Content-Type", "application/json"),
            ("Webhook-Id", "msg_1"),
            ("X-Custom", "one, two"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "dropped: named in Connection"),
            ("Te", "trailers"),
        ],
        body,
    )
    result = run("replay", source["id"], "latest", "--to", target["url"] + "/app")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"PATCH {target['url']}/app → 200 OK")

    original = run("bin", "request", source["id"], "latest", "--json")
    replayed = run("bin", "request", target["id"], "latest", "--json")
    original, replayed = json.loads(original.stdout), json.loads(replayed.stdout)
    assert replayed["method"] == "PATCH"
    assert replayed["subpath"] == "/app"
    assert replayed["body_base64"] == original["body_base64"]

    def kept(request):
        skip = {"host", "content-length", "connection", "x-hop", "te"}
        return [[n, v] for n, v in request["headers"] if n.lower() not in skip]

    assert kept(replayed) == kept(original)
    names = {n.lower() for n, _ in replayed["headers"]}
    # Nothing added: no User-Agent or Accept-Encoding of the HTTP library's own.
    assert "user-agent" not in names and "accept-encoding" not in names
    assert "x-hop" not in names and "te" not in names


def test_replay_with_path_and_json_output(run, live_server):
    source = live_server.create_bin()
    target = live_server.create_bin(response={"status": 201, "body": "made"})
    requests.post(source["url"] + "/hooks/github?delivery=9", json={"zen": "yes"}, timeout=5)
    result = run("replay", source["id"], "latest", "--to", target["url"], "--with-path", "--json")
    out = json.loads(result.stdout)
    assert out["status_code"] == 201 and out["response_body"] == "made"
    replayed = requests.get(
        f"{live_server.url}/api/bins/{target['id']}/requests", timeout=5
    ).json()[0]
    assert replayed["subpath"] == "/hooks/github"
    assert replayed["query_string"] == "delivery=9"
    # The keys of an edited replay's --json too, so a script reads both alike.
    edited = json.loads(
        run(
            "replay", source["id"], "latest", "--to", target["url"], "--method", "PUT", "--json"
        ).stdout
    )
    assert set(edited) <= set(out)
    assert (out["body_text"], out["error"]) == ("made", None)
    assert dict(out["headers"])["Content-Type"] == dict(edited["headers"])["Content-Type"]


@pytest.mark.parametrize(
    "to, message",
    [
        ("ftp://example.com/x", "--to must be an http:// or https:// URL"),
        ("http://127.0.0.1:{closed_port}/app", "cannot reach http://127.0.0.1:"),
    ],
)
def test_replay_refuses_or_reports_a_bad_target(run, live_server, to, message):
    # The closed port is found when the test runs: the same test ids in every collection.
    to = to.format(closed_port=free_port())
    source = live_server.create_bin()
    requests.post(source["url"], data="x", timeout=5)
    result = run("replay", source["id"], "latest", "--to", to)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "help" in CliRunner().invoke(cli, ["replay", "--help"]).output
    assert "Host and Content-Length are computed again" in " ".join(
        CliRunner().invoke(cli, ["replay", "--help"]).output.split()
    )


@pytest.fixture
def token_server(tmp_path):
    live = start_live_server(make_settings(tmp_path, token="s3cret-token"))
    yield live
    live.stop()


def test_token_from_option_or_environment(token_server):
    runner = CliRunner()
    base = {"HOOKLAB_SERVER": token_server.url, "HOOKLAB_TOKEN": None}
    refused = runner.invoke(cli, ["bin", "list"], env=base)
    assert refused.exit_code == 1
    assert "needs an access token: pass --token or set HOOKLAB_TOKEN" in refused.stderr

    wrong = runner.invoke(cli, ["bin", "list", "--token", "nope"], env=base)
    assert "the access token was refused" in wrong.stderr

    made = runner.invoke(cli, ["bin", "create", "--json", "--token", "s3cret-token"], env=base)
    assert made.exit_code == 0, made.output
    bin_id = json.loads(made.stdout)["id"]
    env = {**base, "HOOKLAB_TOKEN": "s3cret-token"}
    assert bin_id in runner.invoke(cli, ["bin", "list"], env=env).stdout

    # The websocket sends the token too.
    requests.post(json.loads(made.stdout)["url"], data="hi", timeout=5)
    tailed = runner.invoke(cli, ["bin", "tail", bin_id, "--after", "0", "--count", "1"], env=env)
    assert tailed.exit_code == 0, tailed.output
    assert "POST" in tailed.stdout


# -- the sender side: events, webhooks, fire, demo, worker ------------------------------------


def test_events_lists_the_catalog(run):
    table = run("events").stdout
    assert table.splitlines()[0].split() == ["SLUG", "NAME", "DESCRIPTION"]
    assert "payment_received" in table and "Payment Received" in table
    catalog = json.loads(run("events", "--json").stdout)
    assert any(e["slug"] == "payment_received" and e["payload"] for e in catalog)


def test_webhook_add_quiet_prints_only_the_id_for_scripts(run, live_server):
    target = live_server.create_bin()
    added = run("webhook", "add", "-q", "--name", "Quiet", "--bin", target["id"], "--event", "*")
    assert added.exit_code == 0, added.output
    webhook_id = added.stdout.strip()
    assert webhook_id.isdigit() and added.stdout == webhook_id + "\n"
    assert run("webhook", "test", webhook_id).exit_code == 0


def test_webhook_add_test_deliveries_redeliver_and_rm(run, live_server):
    target = live_server.create_bin()
    added = run(
        "webhook", "add", "--name", "Payments", "--bin", target["id"],
        "--event", "Payment Received", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    webhook = json.loads(added.stdout)
    assert webhook["url"] == target["url"] and webhook["event"] == "payment_received"
    webhook_id = str(webhook["id"])

    listed = run("webhook", "list").stdout
    assert "Payments" in listed and "payment_received" in listed
    assert webhook["secret"] in run("webhook", "show", webhook_id).stdout

    tested = run("webhook", "test", webhook_id)
    assert tested.exit_code == 0, tested.output
    assert tested.stdout.startswith("✓ Test event delivered: 200 in ")

    table = run("webhook", "deliveries", webhook_id).stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "EVENT", "STATUS", "ATTEMPTS"]
    assert "payment_received" in table[1] and "succeeded" in table[1] and "yes" in table[1]
    [delivery] = json.loads(run("webhook", "deliveries", webhook_id, "--json").stdout)

    again = run("webhook", "redeliver", str(delivery["id"]))
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"✓ Delivery {delivery['id']}, attempt 2: 200")
    captured = requests.get(f"{live_server.url}/api/bins/{target['id']}/requests", timeout=5)
    assert len(captured.json()) == 2

    assert run("webhook", "rm", webhook_id).stdout == f"Deleted webhook {webhook_id}\n"
    gone = run("webhook", "show", webhook_id)
    assert gone.exit_code == 1 and gone.stderr.startswith("Error: ")


def test_a_failed_test_event_exits_1(run, live_server):
    target = live_server.create_bin(response={"status": 500, "body": "boom"})
    webhook = json.loads(
        run(
            "webhook", "add", "--name", "Down", "--url", target["url"], "--event", "*", "--json"
        ).stdout
    )
    result = run("webhook", "test", str(webhook["id"]))
    assert result.exit_code == 1
    assert re.match(r"✗ Test event failed after \d+ ms: HTTP 500", result.stdout), result.stdout
    assert "boom" in result.stdout


def test_a_receiver_that_is_down_reads_as_one_sentence(run, live_server):
    # The time comes before the reason, so it cannot be read as part of the address.
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    webhook = json.loads(
        run("webhook", "add", "--name", "Down", "--url", url, "--event", "*", "--json").stdout
    )
    tested = run("webhook", "test", str(webhook["id"]))
    assert tested.exit_code == 1
    assert re.fullmatch(
        rf"✗ Test event failed after \d+ ms: connection refused: nothing is listening at "
        rf"127\.0\.0\.1:{port}\n",
        tested.stdout,
    ), tested.stdout
    delivery_id = json.loads(run("webhook", "deliveries", str(webhook["id"]), "--json").stdout)[0][
        "id"
    ]
    again = run("webhook", "redeliver", str(delivery_id))
    assert again.exit_code == 1
    assert re.fullmatch(
        rf"✗ Delivery {delivery_id}, attempt 2 failed after \d+ ms: connection refused: "
        rf"nothing is listening at 127\.0\.0\.1:{port}\n",
        again.stdout,
    ), again.stdout


def test_webhook_show_is_laid_out_for_people(run, live_server):
    target = live_server.create_bin()
    webhook = json.loads(
        run(
            "webhook", "add", "--name", "Payments", "--bin", target["id"],
            "--event", "payment_received", "--json",
        ).stdout
    )  # fmt: skip
    webhook_id = str(webhook["id"])
    assert run("webhook", "test", webhook_id).exit_code == 0
    shown = run("webhook", "show", webhook_id)
    assert shown.exit_code == 0, shown.output
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in shown.stdout.splitlines())
    assert fields["ID"] == webhook_id
    assert fields["Name"] == "Payments"
    assert fields["URL"] == target["url"]
    assert fields["Event"] == "Payment Received (payment_received)"
    assert fields["Active"] == "yes"
    assert fields["Secret"] == webhook["secret"]
    assert fields["Page"] == f"{live_server.url}/webhooks/{webhook_id}"
    assert fields["Deliveries"] == "1"
    assert re.fullmatch(r"#\d+ succeeded \(test\): 200", fields["Last delivery"])
    # No Python values or raw JSON for a person to decode.
    assert "True" not in shown.stdout and "{" not in shown.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name", "xy", "--event", "*"], "give either --url or --bin"),
        (["--name", "xy", "--url", "http://127.0.0.1:9/", "--event", "nope"], "no event 'nope'"),
        (["--name", "xy", "--url", "not a url", "--event", "*"], "URL must start with http"),
    ],
)
def test_webhook_add_refuses_bad_input_in_one_line(run, args, message):
    result = run("webhook", "add", *args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_fire_with_data_inline_from_a_file_and_stdin(run, live_server, tmp_path):
    target = live_server.create_bin()
    run("webhook", "add", "--name", "All", "--bin", target["id"], "--event", "*")

    inline = run("fire", "payment_received", "--data", '{"payment_id": 1}')
    assert inline.exit_code == 0, inline.output
    assert re.fullmatch(r"Fired payment_received: event \d+, 1 delivery \(\d+\)\n", inline.stdout)

    payload = tmp_path / "payment.json"
    payload.write_text('{"payment_id": 2}')
    fired = json.loads(run("fire", "Payment Received", "--data", f"@{payload}", "--json").stdout)
    assert len(fired["deliveries"]) == 1

    run("fire", "payment_received", "--data", "@-", input='{"payment_id": 3}')
    ids = set()
    deadline = time.monotonic() + 10
    while len(ids) < 3 and time.monotonic() < deadline:
        done = requests.get(
            f"{live_server.url}/api/bins/{target['id']}/export?format=json", timeout=5
        )
        ids = {r["json"]["payment_id"] for r in done.json() if r["json"]}
        time.sleep(0.05)
    assert ids == {1, 2, 3}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "{not json"], "--data is not valid JSON"),
        (["--data", "@/nonexistent.json"], "cannot read --data from /nonexistent.json"),
        (["--count", "0"], "must be at least 1"),
        (["--data", "[1, 2]"], "The payload must be a JSON object."),
    ],
)
def test_fire_refuses_bad_input_in_one_line(run, args, message):
    result = run("fire", "payment_received", *args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_fire_with_no_subscriber_says_why_nothing_is_delivered(run, live_server):
    target = live_server.create_bin()
    run("webhook", "add", "--name", "Other", "--bin", target["id"], "--event", "invoice_sent")
    result = run("fire", "payment_received")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"Fired payment_received: event \d+, no deliveries: "
        r"no active webhook subscribes to payment_received\n",
        result.stdout,
    ), result.stdout


def test_fire_many_shows_a_progress_bar(run, live_server):
    result = run("fire", "payment_received", "--count", "25")
    assert result.exit_code == 0, result.output
    assert "Firing payment_received" in result.stderr
    assert result.stdout == "Fired payment_received 25 times: 0 deliveries\n"
    small = run("fire", "payment_received", "--count", "3")
    assert "Firing" not in small.stderr


def test_demo_against_a_running_server(run, live_server):
    result = run("demo")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"Hooklab demo on {live_server.url}\n")
    assert "1. Created a bin:       http://127.0.0.1:" in out
    assert "2. Added a webhook:     Payment Received → demo bin (event payment_received" in out
    assert "3. Sent a test event:   ✓ the bin answered 200" in out
    assert "Webhook-Signature: v1," in out
    assert '"customer_name": "John McMocked"' in out
    assert "Signature: ✓ valid (signature matches the webhook's secret" in out
    assert f"the bin's inspector:  {live_server.url}/bins/" in out
    assert f"the webhook:          {live_server.url}/webhooks/" in out

    as_json = json.loads(run("demo", "--json").stdout)
    assert as_json["signature"] == {
        "valid": True,
        "reason": "signature matches the webhook's secret",
    }
    assert as_json["request"]["json"] is not None
    assert requests.get(as_json["urls"]["webhook"], timeout=5).status_code == 200
    assert requests.get(as_json["urls"]["inspector"], timeout=5).status_code == 200


def test_demo_starts_a_server_when_none_is_running():
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli, ["demo", "--server", url, "--exit"], env={"HOOKLAB_TOKEN": None}
    )
    assert result.exit_code == 0, result.output
    assert f"No Hooklab at {url}: starting one for the demo." in result.stderr
    assert "Signature: ✓ valid" in result.stdout
    assert f"Hooklab demo on {url}" not in result.stdout

    started = CliRunner().invoke(cli, ["demo", "--start", "--exit", "--json"])
    assert json.loads(started.stdout)["signature"]["valid"] is True


def test_worker_delivers_what_a_server_without_workers_queued(tmp_path):
    app = create_app(make_settings(tmp_path))
    # Serve the API and the bin, but start no delivery workers: `hooklab worker` sends.
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    worker = None
    try:
        target = requests.post(f"{base}/api/bins", json={}, timeout=5).json()
        webhook = {"name": "Worker", "url": target["url"], "event": "payment_received"}
        requests.post(f"{base}/api/webhooks", json=webhook, timeout=5).raise_for_status()
        fired = requests.post(
            f"{base}/api/events/payment_received", json={"n": 1}, timeout=5
        ).json()
        # This server runs no delivery worker: the delivery waits, untried, for one.
        waiting = requests.get(
            f"{base}/api/deliveries/{fired['deliveries'][0]['id']}", timeout=5
        ).json()
        assert (waiting["status"], waiting["attempt_count"]) == ("pending", 0)

        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
        worker = subprocess.Popen(
            [HOOKLAB, "worker", "--db", str(tmp_path / "hooklab.db"), "--delivery-workers", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        wait = requests.get(
            f"{base}/api/bins/{target['id']}/requests/wait",
            params={"after": 0, "timeout": 15},
            timeout=20,
        )
        assert wait.status_code == 200 and wait.json()["json"] == {"n": 1}
        worker.send_signal(signal.SIGINT)
        out, err = worker.communicate(timeout=10)
        assert worker.returncode == 0, err
        assert "Hooklab delivery workers: 2 threads" in out
        assert "Traceback" not in err
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        server.shutdown()
        server.server_close()


def test_demo_keeps_its_server_until_ctrl_c():
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
    demo = subprocess.Popen(
        [HOOKLAB, "demo", "--start"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = ""
        while "Ctrl-C stops it" not in line:
            line = demo.stderr.readline()
            assert line, "the demo ended before serving"
        server = line.split("runs on ", 1)[1].split(" ", 1)[0]
        # The two pages it printed can be opened while it runs.
        assert requests.get(f"{server}/webhooks/1", timeout=5).status_code == 200
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=10)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0
    assert "Signature: ✓ valid" in out
    assert err.rstrip().endswith("Stopped.") and "Traceback" not in err


# The sender controls every byte of a captured request: nothing in it may drive the terminal.
HOSTILE = "\x1b[31mred\x1b[0m \x9b2J \u202eevil\r\x07"


def assert_no_terminal_controls(text: str) -> None:
    controls = [c for c in text if (ord(c) < 32 and c not in "\n") or 0x7F <= ord(c) < 0xA0]
    assert not controls, controls
    assert "\u202e" not in text


def test_captured_data_is_printed_with_control_characters_escaped(run, live_server):
    created = live_server.create_bin(name="hostile\x1b[2J")
    # gunicorn refuses ESC in a header value but takes the one-byte CSI (0x9b, latin-1).
    sent = requests.post(
        created["url"] + "/p%1B%5B31m",
        headers={"X-Evil": "\x9b31mred\x9b0m"},
        data=("body " + HOSTILE + "\nsecond line").encode(),
        timeout=5,
    )
    assert sent.status_code == 200

    shown = run("bin", "request", created["id"], "latest").stdout
    assert_no_terminal_controls(shown)
    assert "X-Evil: \\x9b31mred\\x9b0m" in shown
    assert "body \\x1b[31mred\\x1b[0m \\x9b2J \\u202eevil\\r\\x07\nsecond line" in shown

    table = run("bin", "requests", created["id"]).stdout
    assert_no_terminal_controls(table)
    listed = run("bin", "list").stdout
    assert_no_terminal_controls(listed)
    assert "hostile\\x1b[2J" in listed
    assert_no_terminal_controls(run("bin", "show", created["id"]).stdout)

    tailed = run("bin", "tail", created["id"], "--after", "0", "--count", "1", "--full").stdout
    assert_no_terminal_controls(tailed)
    assert "X-Evil: \\x9b31mred\\x9b0m" in tailed

    # --json stays the same JSON value, with the controls as \\u escapes.
    as_json = run("bin", "request", created["id"], "latest", "--json").stdout
    assert_no_terminal_controls(as_json.replace("\n", ""))
    assert ["X-Evil", "\x9b31mred\x9b0m"] in json.loads(as_json)["headers"]


@pytest.mark.parametrize(
    ("text", "one_line", "multiline"),
    [
        ("plain ünï €", "plain ünï €", "plain ünï €"),
        ("\x1b[31m", "\\x1b[31m", "\\x1b[31m"),
        ("a\nb\tc\rd", "a\\nb\\tc\\rd", "a\nb\tc\\rd"),
        ("\x00\x7f\x9b", "\\x00\\x7f\\x9b", "\\x00\\x7f\\x9b"),
        ("\u202e\u2066", "\\u202e\\u2066", "\\u202e\\u2066"),
    ],
)
def test_visible_escapes_what_a_terminal_acts_on(text, one_line, multiline):
    from hooklab.cli.common import json_text, visible

    assert visible(text) == one_line
    assert visible(text, multiline=True) == multiline
    assert json.loads(json_text({"v": text})) == {"v": text}
    assert_no_terminal_controls(json_text({"v": text}))


def test_a_captured_lone_surrogate_is_shown_escaped(run, live_server):
    # Valid JSON syntax, not text: printing it raised UnicodeEncodeError (exit 1, no output).
    created = live_server.create_bin()
    body = b'{"a": "\\ud800x", "k": "\\udc00"}'
    headers = {"Content-Type": "application/json"}
    requests.post(created["url"], data=body, headers=headers, timeout=5)
    shown = run("bin", "request", created["id"], "latest")
    assert shown.exit_code == 0, shown.output
    assert "\\ud800x" in shown.stdout
    as_json = run("bin", "request", created["id"], "latest", "--json")
    assert as_json.exit_code == 0, as_json.output
    shown = json.loads(as_json.stdout)
    # Not read as JSON (no text holds half a pair), shown as the text it is.
    assert shown["json"] is None and shown["body_text"] == body.decode()
    assert run("bin", "requests", created["id"]).exit_code == 0
    # Should one reach the terminal another way, it is printed as its escape.
    assert json_text({"a": "\ud800x"}) == '{"a": "\\ud800x"}'
    assert json.loads(json_text({"a": "\ud800x"})) == {"a": "\ud800x"}
    assert visible("a\udfffb") == "a\\udfffb"


def test_bin_rm_deletes_several_in_one_call_and_names_those_not_found(run, live_server):
    kept = live_server.create_bin()
    first, second = live_server.create_bin(), live_server.create_bin()
    requests.post(first["url"], json={"n": 1}, timeout=5)
    missing = "a" * 26
    result = run("bin", "rm", first["id"], missing, second["id"], first["id"])
    assert result.exit_code == 1
    assert result.stdout == f"Deleted bin {first['id']}\nDeleted bin {second['id']}\n"
    assert f"No bin with id '{missing}'." in result.output
    for gone in (first, second):
        assert run("bin", "show", gone["id"]).exit_code == 1
    assert run("bin", "show", kept["id"]).exit_code == 0
    # An id of the wrong shape: refused as a whole, nothing deleted.
    result = run("bin", "rm", kept["id"], "not-a-bin")
    assert result.exit_code == 1 and "'not-a-bin' is not a bin id." in result.output
    assert run("bin", "show", kept["id"]).exit_code == 0


def test_a_test_send_answered_410_says_the_webhook_is_now_disabled():
    from hooklab.cli.webhooks import describe_test

    gone = {"ok": False, "status_code": 410, "duration_ms": 3, "webhook_active": False,
            "error": "HTTP 410 Gone: the receiver says this URL is gone"}  # fmt: skip
    # Said once: the reason names the 410 (it said "410 Gone" twice before).
    assert describe_test(gone) == (
        "✗ Test event failed after 3 ms: HTTP 410 Gone: the receiver says this URL is gone; "
        "the webhook is now disabled"
    )
    assert "disabled" not in describe_test({**gone, "status_code": 500})


def test_worker_refuses_a_database_that_is_not_there(tmp_path):
    # A misspelt --db made an empty database and ran forever, delivering nothing.
    missing = tmp_path / "typo.db"
    result = CliRunner().invoke(cli, ["worker", "--db", str(missing)], env={"HOOKLAB_TOKEN": None})
    assert result.exit_code == 1
    assert f"there is no database at {missing}" in result.stderr
    assert not missing.exists()


def test_worker_offers_only_the_settings_it_reads():
    # `hooklab worker --help` listed --port, --threads, --token…, which did nothing there.
    shown = CliRunner().invoke(cli, ["worker", "--help"]).output
    for option in ("--db", "--delivery-workers", "--retry-schedule", "--block-private-targets"):
        assert option in shown
    for option in ("--port", "--host", "--threads", "--token", "--max-body-bytes"):
        assert option not in shown
    refused = CliRunner().invoke(cli, ["worker", "--port", "9000"])
    assert refused.exit_code == 2
    assert "No such option '--port'" in refused.stderr
    assert "--port" in CliRunner().invoke(cli, ["serve", "--help"]).output


def test_every_bad_setting_of_a_bin_is_said_on_one_line(run):
    result = run("bin", "create", "--status", "999", "--secret", "not-a-key")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "secret: " in line
    assert "response.status must be a whole number from 200 to 599 (a 1xx status" in line
    assert run("bin", "list", "--json").stdout.strip() == "[]"  # nothing was created
