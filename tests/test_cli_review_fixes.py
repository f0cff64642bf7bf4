"""The CLI's fixes from an outside review: each test failed on the code before its fix."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from hooklab.cli.listen import _print_forwarded
from hooklab.cli.main import cli
from tests.conftest import make_settings, start_live_server
from tests.served import free_port
from tests.waiting import wait_for

HOOKLAB = str(Path(sys.executable).with_name("hooklab"))
# What a terminal would act on instead of showing: ESC, the one-byte CSI (C1), a bidi override.
HOSTILE = "\x1b[31m\x9b31m\u202etxt.exe"
RAW = ("\x1b", "\x9b", "\u202e")


@pytest.fixture
def run(live_server):
    """Invoke the CLI in-process against the live server; returns click's Result."""
    runner = CliRunner()

    def invoke(*args: str, env=None):
        environ = {"HOOKLAB_SERVER": live_server.url, "HOOKLAB_TOKEN": None, **(env or {})}
        return runner.invoke(
            cli, list(args), env=environ, catch_exceptions=False, prog_name="hooklab"
        )

    return invoke


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without HOOKLAB_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
    return env | extra


def one_error_line(result, code: int = 2) -> str:
    """The one `Error: …` line of a failed command (exit `code`, no traceback)."""
    assert result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
    return result.stderr


# -- 3. hostile text is shown as text ---------------------------------------------------------


def test_events_show_escapes_control_and_bidi_characters_of_payload_and_schema(run, live_server):
    made = requests.post(
        f"{live_server.url}/api/events",
        json={"slug": "evil.note", "name": "Evil", "payload": {"note": HOSTILE}},
        timeout=5,
    )
    assert made.status_code == 201, made.text
    shown = run("events", "show", "evil.note")
    assert shown.exit_code == 0, shown.output
    assert not any(char in shown.stdout for char in RAW), repr(shown.stdout)
    assert '"note": "\\u001b[31m\\u009b31m\\u202etxt.exe"' in shown.stdout
    # --json is the same value, escaped alike.
    as_json = run("events", "show", "evil.note", "--json")
    assert not any(char in as_json.stdout for char in RAW)
    assert json.loads(as_json.stdout)["payload"] == {"note": HOSTILE}


def test_webhook_add_shows_the_name_and_url_as_text(run, live_server):
    added = run(
        "webhook", "add", "--name", f"Payments {HOSTILE}",
        "--url", "http://127.0.0.1:9/hooks/\u202eexe.txt", "--event", "payment_received",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert not any(char in added.stdout for char in RAW), repr(added.stdout)
    assert "Payments \\x1b[31m\\x9b31m\\u202etxt.exe → http://127.0.0.1:9/hooks/" in added.stdout


def test_listen_shows_a_forwarded_path_and_the_apps_error_as_text(capsys):
    outcome = {
        "id": 1,
        "method": "POST",
        "path": "/hooks\x9b2J\u202e",
        "status_code": None,
        "error": f"cannot reach {HOSTILE}",
        "duration_ms": 3,
    }
    _print_forwarded(outcome, as_json=False)
    _print_forwarded(outcome, as_json=True)
    out = capsys.readouterr().out
    assert not any(char in out for char in RAW), repr(out)
    assert out.startswith("POST /hooks\\x9b2J\\u202e -> error: cannot reach \\x1b[31m")
    assert json.loads(out.splitlines()[1])["path"] == "/hooks\x9b2J\u202e"


# -- 4, 5. serve on IPv6 loopback, and on a free port ---------------------------------------


def read_line(process: subprocess.Popen, timeout: float = 30.0) -> str:
    """The next line the process prints on stdout ('' when it ends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if ready:
            return process.stdout.readline()
    raise AssertionError(f"nothing printed within {timeout:g} s")


def serve(tmp_path: Path, *args: str) -> subprocess.Popen:
    """`hooklab serve` with `args`, in a process group of its own (stopped by `stop`)."""
    return subprocess.Popen(
        [HOOKLAB, "serve", "--db", str(tmp_path / "h.db"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(), start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen) -> str:
    """Stop a `serve` (Ctrl-C, then kill -9 of what is left); what it printed on stderr."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
    except ProcessLookupError:
        _, err = process.communicate()
    return err


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_ipv6_port() -> int:
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        return sock.getsockname()[1]


def banner_url(process: subprocess.Popen) -> str:
    line = read_line(process)
    found = re.match(r"Hooklab on (http://\S+)/  \(database ", line)
    assert found, f"{line!r} {stop(process)}"
    return found.group(1)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
@pytest.mark.parametrize("given_port", ["fixed", "0"])
def test_serve_on_ipv6_loopback_brackets_the_address_and_serves(tmp_path, given_port):
    port = str(free_ipv6_port()) if given_port == "fixed" else "0"
    process = serve(tmp_path, "--host", "::1", "--port", port)
    try:
        url = banner_url(process)
        assert re.fullmatch(r"http://\[::1\]:\d+", url) and not url.endswith(":0"), url
        if given_port == "fixed":
            assert url == f"http://[::1]:{port}"
        health = wait_for(lambda: _answer(f"{url}/api/health"), what="the server on ::1")
        assert health.json()["ok"] is True
        # The Host and Origin checks take the bracketed address of a server bound there.
        made = requests.post(
            f"{url}/api/bins", json={"name": "v6"}, headers={"Origin": url}, timeout=5
        )
        assert made.status_code == 201, made.text
        assert made.json()["url"].startswith(f"{url}/b/")
        assert requests.get(f"{url}/", timeout=5).status_code == 200
        listed = CliRunner().invoke(cli, ["--server", url, "bin", "list"], env=clean_env())
        assert listed.exit_code == 0 and "v6" in listed.stdout, listed.output
    finally:
        err = stop(process)
    assert "is not a valid port number" not in err and "Traceback" not in err, err


def _answer(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=2)
    except requests.ConnectionError:
        return None


def test_serve_on_port_0_prints_the_port_it_got(tmp_path):
    process = serve(tmp_path, "--port", "0")
    try:
        url = banner_url(process)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url) and not url.endswith(":0"), url
        health = wait_for(lambda: _answer(f"{url}/api/health"), what="the server")
        assert health.json()["ok"] is True
        created = CliRunner().invoke(cli, ["--server", url, "bin", "create"], env=clean_env())
        assert created.exit_code == 0, created.output
        assert created.stdout.startswith(f"{url}/b/")  # its own address, with the real port
    finally:
        stop(process)


# -- 6. tokens and idempotency keys no HTTP header can carry ----------------------------------


@pytest.mark.parametrize(
    "args, env, message",
    [
        (
            ["--token", "jeton-ł", "bin", "list"],
            {},
            "Error: --token (or HOOKLAB_TOKEN): the access token has 'ł' (U+0142) in it, "
            "which an HTTP header cannot carry (Latin-1 characters only)\n",
        ),
        (
            ["bin", "list"],
            {"HOOKLAB_TOKEN": "a\nb"},
            "Error: --token (or HOOKLAB_TOKEN): the access token has a control character "
            "(\\n) in it\n",
        ),
        (
            ["fire", "payment_received", "--idempotency-key", "order-€"],
            {},
            "Error: Invalid value for '--idempotency-key': it has '€' (U+20AC) in it, which an "
            "HTTP header cannot carry (Latin-1 characters only) (see `hooklab fire --help`)\n",
        ),
        (
            ["fire", "payment_received", "--idempotency-key", "a\x1bb"],
            {},
            "Error: Invalid value for '--idempotency-key': it has a control character (\\x1b) "
            "in it (see `hooklab fire --help`)\n",
        ),
    ],
)
def test_a_token_or_key_no_header_can_carry_is_a_usage_error(args, env, message):
    nowhere = f"http://127.0.0.1:{free_port()}"  # refused before any call
    result = CliRunner().invoke(
        cli, args, env={"HOOKLAB_SERVER": nowhere, **env}, prog_name="hooklab"
    )
    one_error_line(result)
    assert result.stderr == message


def test_serve_refuses_a_token_no_client_could_send(tmp_path):
    # (A subprocess: a server that starts, as the code before did, is stopped after a while.)
    process = serve(tmp_path, "--token", "jeton-ł", "--port", "0")
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        stop(process)
        raise AssertionError("the server started with a token no client can send") from None
    assert process.returncode == 2 and out == "", out + err
    assert err == (
        "Error: --token (or HOOKLAB_TOKEN): the access token has 'ł' (U+0142) in it, which an "
        "HTTP header cannot carry (Latin-1 characters only) (see `hooklab serve --help`)\n"
    )
    assert not (tmp_path / "h.db").exists()


def test_a_latin_1_token_still_works(tmp_path):
    live = start_live_server(make_settings(tmp_path, token="clé-1"))
    try:
        result = CliRunner().invoke(
            cli, ["--server", live.url, "--token", "clé-1", "bin", "list"], env=clean_env()
        )
        assert result.exit_code == 0, result.output
    finally:
        live.kill()


# -- 7. a --body file that is not UTF-8 -------------------------------------------------------


@pytest.mark.parametrize("command", [["bin", "create"], ["bin", "update", "a" * 26]])
def test_a_body_file_that_is_not_utf8_is_one_clear_line(tmp_path, command):
    body = tmp_path / "body.bin"
    body.write_bytes(b"\xff\xfe\x00binary")
    nowhere = f"http://127.0.0.1:{free_port()}"  # the file is read before any call
    result = CliRunner().invoke(
        cli, [*command, "--body", f"@{body}"], env={"HOOKLAB_SERVER": nowhere}
    )
    assert one_error_line(result, 1) == f"Error: --body in {body} is not UTF-8 text\n"


# -- 8. `hooklab events --server/--token/--json <command>` ------------------------------------


def test_the_events_groups_options_reach_its_commands(tmp_path):
    live = start_live_server(make_settings(tmp_path, token="s3cret"))
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {"HOOKLAB_SERVER": nowhere, "HOOKLAB_TOKEN": None}
    given = ["events", "--server", live.url, "--token", "s3cret"]
    try:
        shown = CliRunner().invoke(cli, [*given, "show", "payment_received"], env=env)
        assert shown.exit_code == 0, shown.output
        assert shown.stdout.startswith("Payment Received (payment_received, built-in)")
        as_json = CliRunner().invoke(cli, [*given, "--json", "show", "payment_received"], env=env)
        assert as_json.exit_code == 0, as_json.output
        assert json.loads(as_json.stdout)["slug"] == "payment_received"
        checked = CliRunner().invoke(
            cli, [*given, "--json", "check", "payment_received", "--data", "{}"], env=env
        )
        assert checked.exit_code == 1 and json.loads(checked.stdout)["valid"] is False
        document = tmp_path / "hooks.json"
        document.write_text(json.dumps(OPENAPI))
        imported = CliRunner().invoke(cli, [*given, "import", str(document)], env=env)
        assert imported.exit_code == 0, imported.output
        removed = CliRunner().invoke(cli, [*given, "rm", "newPet"], env=env)
        assert (removed.exit_code, removed.stdout) == (0, "Deleted event newPet\n"), removed.output
        # The command's own option still wins over the group's.
        own = CliRunner().invoke(cli, [*given, "show", "payment_received", "--server", nowhere])
        assert own.exit_code == 1 and nowhere in own.stderr
    finally:
        live.kill()


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "webhooks": {
        "newPet": {
            "post": {
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"id": {"type": "string"}}}
                        }
                    }
                }
            }
        }
    },
}


# -- 9. a --server with a query, a fragment, a bad host or a path ----------------------------


@pytest.mark.parametrize(
    ("server", "why"),
    [
        ("http://127.0.0.1:8411?x=1", "has a query (?…): the server's root URL takes none"),
        ("http://127.0.0.1:8411/?", "has a query (?…): the server's root URL takes none"),
        ("http://127.0.0.1:8411#frag", "has a fragment (#…): the server's root URL takes none"),
        ("http://%zz", "names no valid host ('%zz')"),
        ("http://a..b:80", "names no valid host ('a..b')"),
        ("http://127.0.0.1:8411/api", "has a path ('/api'): give the server's root URL, with no path"),  # noqa: E501
    ],
)  # fmt: skip
def test_a_server_url_that_is_not_a_root_url_is_a_usage_error(server, why):
    result = CliRunner().invoke(cli, ["--server", server, "bin", "list"], env={})
    assert one_error_line(result) == (
        f"Error: --server (or HOOKLAB_SERVER): {server!r} {why}; give one like "
        "http://127.0.0.1:8000\n"
    )


@pytest.mark.parametrize("server", ["http://localhost:{port}/", "http://my_host.localhost:{port}"])
def test_a_root_url_with_a_slash_or_an_underscore_is_still_taken(server):
    port = free_port()
    result = CliRunner().invoke(cli, ["--server", server.format(port=port), "bin", "list"])
    assert result.exit_code == 1 and "cannot reach Hooklab" in result.stderr, result.output


# -- 10. Ctrl-C -------------------------------------------------------------------------------


def start_cli(*args: str, server: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [HOOKLAB, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(HOOKLAB_SERVER=server, **env),
    )  # fmt: skip


def interrupt(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()


def test_ctrl_c_while_a_test_event_is_waited_for_says_so_and_exits_130(live_server):
    slow = live_server.create_bin(response={"status": 200, "delay_ms": 30_000})
    webhook = live_server.add_webhook(name="slow", url=slow["url"], event="payment_received")
    process = start_cli("webhook", "test", str(webhook["id"]), server=live_server.url)
    # The bin has the test event: the command waits for the bin's (delayed) answer.
    count = f"{live_server.url}/api/bins/{slow['id']}"
    wait_for(lambda: requests.get(count, timeout=5).json()["request_count"], what="the event")
    out, err = interrupt(process)
    assert process.returncode == 130, err
    assert err == "\nStopped (Ctrl-C).\n"
    assert "Aborted!" not in err and "Traceback" not in err


def test_ctrl_c_during_fire_says_how_many_were_fired_and_exits_130(live_server):
    target = live_server.create_bin()
    webhook = live_server.add_webhook(name="all", url=target["url"], event="payment_received")
    process = start_cli("fire", "payment_received", "--count", "3000", server=live_server.url)
    log = f"{live_server.url}/api/webhooks/{webhook['id']}/deliveries?limit=1"

    def fired() -> int:
        return int(requests.get(log, timeout=5).headers["X-Total-Count"]) >= 5

    wait_for(fired, what="five events fired")
    out, err = interrupt(process)
    assert process.returncode == 130, err
    found = re.search(
        r"^Stopped \(Ctrl-C\) after firing payment_received (\d+) of 3000 times \(the call "
        r"under way may have fired once more\)$",
        err,
        re.M,
    )
    assert found and int(found.group(1)) >= 4, err
    assert "Aborted!" not in err and "Traceback" not in err


# Run at the start of the `hooklab` script (sitecustomize): Ctrl-C arrives while the command
# loads, at the moment `hooklab.cli.main` is imported.
CTRL_C_WHILE_LOADING = """
import os, signal, sys


class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "hooklab.cli.main":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, CtrlC())
"""


def test_ctrl_c_while_the_command_loads_is_no_traceback(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(CTRL_C_WHILE_LOADING)
    done = subprocess.run(
        [HOOKLAB, "bin", "list"],
        capture_output=True, text=True, timeout=30,
        env=clean_env(PYTHONPATH=str(tmp_path), HOOKLAB_SERVER=f"http://127.0.0.1:{free_port()}"),
    )  # fmt: skip
    assert done.returncode == 130, done.stderr
    assert done.stderr == "\nStopped (Ctrl-C).\n"
    assert done.stdout == ""


# -- 11. a --grep too long for a request line -------------------------------------------------


def test_a_grep_too_long_for_the_request_line_is_refused_naming_it(run, live_server):
    bin_id = live_server.create_bin()["id"]
    refused = run("bin", "requests", bin_id, "--grep", "x" * 100_000)
    assert one_error_line(refused) == (
        "Error: Invalid value for '--grep': 100,000 characters make 100,000 bytes in the "
        "request's URL; it may take at most 8,000 (fewer characters outside ASCII: each takes "
        "6 to 12) (see `hooklab bin requests --help`)\n"
    )
    assert "8,000" in run("bin", "requests", bin_id, "--grep", "€" * 900).stderr  # 8,100 bytes
    # The longest it takes still reaches the server (whose request line holds 8,190 bytes).
    taken = run("bin", "requests", bin_id, "--grep", "x" * 8000)
    assert taken.exit_code == 0, taken.output
    assert taken.stdout.startswith("No request matches 'xxx")
