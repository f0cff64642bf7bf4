"""`hooklab replay` with edits (through the server) and `hooklab bin requests --grep`."""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner
from standardwebhooks.webhooks import Webhook

from hooklab.cli.edits import dump_like, set_field
from hooklab.cli.main import cli
from hooklab.client.http import HooklabError
from hooklab.shared.signing import generate_secret, sign
from tests.served import free_port

SECRET = generate_secret()
PAYLOAD = {"type": "invoice.paid", "data": {"amount": 4200, "items": [{"sku": "a", "qty": 1}]}}


@pytest.fixture
def run(live_server):
    """Invoke the CLI in-process against the live server; returns click's Result."""
    runner = CliRunner()

    def invoke(*args: str):
        environ = {"HOOKLAB_SERVER": live_server.url, "HOOKLAB_TOKEN": None}
        return runner.invoke(cli, list(args), env=environ, catch_exceptions=False)

    return invoke


@pytest.fixture
def source(live_server) -> dict:
    """A bin holding one signed JSON webhook."""
    bin_ = live_server.create_bin()
    body = json.dumps(PAYLOAD).encode()
    timestamp = 1_700_000_000
    requests.post(
        bin_["url"],
        data=body,
        headers={
            "Content-Type": "application/json",
            "webhook-id": "msg_cli",
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(SECRET, "msg_cli", timestamp, body),
            "X-Drop-Me": "yes",
        },
        timeout=5,
    )
    return bin_


def newest(live_server, bin_id: str) -> tuple[dict, bytes]:
    base = f"{live_server.url}/api/bins/{bin_id}/requests"
    rid = requests.get(base + "?limit=1", timeout=5).json()[0]["id"]
    full = requests.get(f"{base}/{rid}", timeout=5).json()
    return full, requests.get(f"{base}/{rid}/raw", timeout=5).content


def test_set_and_resign_go_through_the_server_and_verify(run, live_server, source):
    target = live_server.create_bin()
    result = run(
        "replay", source["id"], "latest", "--to", target["url"],
        "--set", "data.amount=1", "--set", "data.items[0].sku=changed", "--resign", SECRET,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"POST {target['url']} → 200")
    replayed, body = newest(live_server, target["id"])
    assert json.loads(body) == {
        "type": "invoice.paid",
        "data": {"amount": 1, "items": [{"sku": "changed", "qty": 1}]},
    }
    assert body.startswith(b'{"type": "invoice.paid", "data": {"amount": 1,')  # same layout
    headers = {n.lower(): v for n, v in replayed["headers"]}
    Webhook(SECRET).verify(body, headers)
    assert headers["webhook-id"] == "msg_cli"
    original, _ = newest(live_server, source["id"])
    assert original["replays"][0]["edited"] == ["body"]
    assert original["replays"][0]["resigned"] is True


def test_header_drop_header_method_and_body(run, live_server, source, tmp_path):
    target = live_server.create_bin()
    result = run(
        "replay", source["id"], "latest", "--to", target["url"] + "/x", "--method", "PUT",
        "--header", "X-New: one", "--header", "Content-Type: text/plain",
        "--drop-header", "x-drop-me", "--body", "plain", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status_code"] == 200
    replayed, body = newest(live_server, target["id"])
    names = dict(replayed["headers"])
    assert replayed["method"] == "PUT" and body == b"plain"
    assert names["X-New"] == "one" and names["Content-Type"] == "text/plain"
    assert "X-Drop-Me" not in names
    original, _ = newest(live_server, source["id"])
    assert original["replays"][0]["edited"] == ["method", "headers", "body"]

    binary = tmp_path / "body.bin"
    binary.write_bytes(b"\x00\xff raw")
    assert run("replay", source["id"], "latest", "--to", target["url"], "--body", f"@{binary}")
    assert newest(live_server, target["id"])[1] == b"\x00\xff raw"


def test_an_unedited_replay_is_sent_from_here_and_kept_on_the_request(run, live_server, source):
    target = live_server.create_bin()
    result = run("replay", source["id"], "latest", "--to", target["url"])
    assert result.exit_code == 0, result.output
    _, body = newest(live_server, target["id"])
    assert body == json.dumps(PAYLOAD).encode()
    # design.md: every replay is kept on the captured request, this one too.
    (kept,) = newest(live_server, source["id"])[0]["replays"]
    assert kept["url"] == target["url"] and kept["method"] == "POST"
    assert kept["status_code"] == 200 and kept["error"] is None
    assert kept["sent_from"] == "cli" and kept["edited"] == [] and kept["resigned"] is False
    assert 0 <= kept["duration_ms"] < 10_000
    # An edited one is sent by the server and says so.
    assert run("replay", source["id"], "latest", "--to", target["url"], "--method", "PUT")
    assert newest(live_server, source["id"])[0]["replays"][0]["sent_from"] == "server"


def test_an_unedited_replay_that_fails_is_kept_with_its_error(run, live_server, source):
    closed = f"http://127.0.0.1:{free_port()}/app"
    result = run("replay", source["id"], "latest", "--to", closed)
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:" in result.stderr
    (kept,) = newest(live_server, source["id"])[0]["replays"]
    assert kept["url"] == closed and kept["status_code"] is None
    assert kept["error"].startswith("cannot reach") and kept["sent_from"] == "cli"


def test_a_server_that_cannot_keep_it_is_only_a_note(run, live_server, source, monkeypatch):
    # An older server (no POST .../replays) or one that refuses: the replay still counts.
    def refuse(self, bin_id, request_id, entry):
        raise HooklabError("404 not_found: no such route")

    monkeypatch.setattr("hooklab.client.http.Client.report_replay", refuse)
    target = live_server.create_bin()
    result = run("replay", source["id"], "latest", "--to", target["url"], "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status_code"] == 200  # stdout stays one JSON object
    assert "not kept in the request's history: 404 not_found" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "data.missing=1"], "--set: data.missing does not exist in the body"),
        (["--set", "data.items[3].sku=x"], "--set: data.items[3] does not exist in the body"),
        (["--set", "data.amount.x=1"], "--set: data.amount.x does not exist in the body"),
        (["--set", "nothing"], "is not PATH=VALUE"),
        (["--body", "not json", "--set", "a=1"], "--set needs a JSON body"),
        (["--resign", "nope"], "resign.secret"),
        (["--header", "no colon"], 'is not "NAME: VALUE"'),
        (["--method", "BAD METHOD"], "method"),
    ],
)
def test_bad_edits_are_one_line_errors(run, live_server, source, args, message):
    target = live_server.create_bin()["url"]  # never reached: the edits are refused first
    result = run("replay", source["id"], "latest", "--to", target, *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_bin_requests_grep(run, live_server, source):
    requests.post(source["url"] + "/other", data=b"refund requested", timeout=5)
    result = run("bin", "requests", source["id"], "--grep", "invoice", "--json")
    assert [r["subpath"] for r in json.loads(result.stdout)] == [""]
    result = run("bin", "requests", source["id"], "--grep", '"refund requested"')
    assert "/other" in result.stdout and result.stdout.count("\n") == 2
    result = run("bin", "requests", source["id"], "--grep", "nothing-like-it")
    assert "No request matches 'nothing-like-it'." in result.stdout


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("a=2", {"a": 2, "b": [1, {"c": "x"}]}),
        ("a=two words", {"a": "two words", "b": [1, {"c": "x"}]}),
        ('a={"n": null}', {"a": {"n": None}, "b": [1, {"c": "x"}]}),
        ("b.0=true", {"a": 1, "b": [True, {"c": "x"}]}),
        ("b[1].c=", {"a": 1, "b": [1, {"c": ""}]}),
        ('b.1.c="7"', {"a": 1, "b": [1, {"c": "7"}]}),
    ],
)
def test_set_field(assignment, expected):
    assert set_field({"a": 1, "b": [1, {"c": "x"}]}, assignment) == expected


def test_set_field_never_creates():
    with pytest.raises(HooklabError, match="b.2 does not exist"):
        set_field({"b": [1]}, "b.2=1")


@pytest.mark.parametrize(
    "original",
    [
        '{"a": 1, "b": [1, 2]}',
        '{"a":1,"b":[1,2]}',
        '{\n    "a": 1,\n    "b": [\n        1,\n        2\n    ]\n}',
    ],
)
def test_the_body_keeps_its_layout(original):
    assert dump_like(json.loads(original), original) == original


def test_an_edited_replay_shows_the_receivers_answer_as_text_only(run, live_server, source):
    # A receiver answering terminal escapes (set the title, colour) is shown, never obeyed.
    hostile = "\x1b]0;PWNED\x07\x1b[31mRED"
    target = live_server.create_bin(response={"body": hostile})
    result = run("replay", source["id"], "latest", "--to", target["url"], "--method", "PUT")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]0;PWNED\\x07\\x1b[31mRED" in result.stdout


@pytest.mark.parametrize("spelling", ["127.0.0.1", "localhost", "127.1"])
def test_an_unedited_replay_to_the_servers_own_api_is_refused(run, live_server, source, spelling):
    # The CLI sends it itself, and skipped the check the server's replays make: a captured
    # request (hostile data) replayed at /api/bins made a bin.
    port = live_server.url.rsplit(":", 1)[1]
    before = requests.get(f"{live_server.url}/api/bins", timeout=5).json()
    result = run("replay", source["id"], "latest", "--to", f"http://{spelling}:{port}/api/bins")
    assert result.exit_code == 1
    assert "own API or pages" in result.stderr and "capture URL (/b/…)" in result.stderr
    assert requests.get(f"{live_server.url}/api/bins", timeout=5).json() == before
    # Into a bin of the same server is the walkthrough: fine.
    target = live_server.create_bin()
    assert run("replay", source["id"], "latest", "--to", target["url"]).exit_code == 0


def test_an_unedited_replay_from_here_keeps_the_methods_case(run, live_server):
    # requests upper-cases a method: a captured `get` went out as `GET` from the CLI.
    import socket

    source = live_server.create_bin()
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"get /b/{source['id']}/x HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    target = live_server.create_bin()
    result = run("replay", source["id"], "latest", "--to", target["url"])
    assert result.exit_code == 0, result.output
    arrived, _ = newest(live_server, target["id"])
    assert arrived["method"] == "get"
