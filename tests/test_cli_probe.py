"""`hooklab probe` against a real `hooklab serve` and receivers written for the tests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hooklab.cli.main import cli
from hooklab.sender.probe import NAMES
from hooklab.shared.signing import generate_secret
from tests import receivers
from tests.served import start


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-probe")
    served = start(tmp, "--db", str(tmp / "cli-probe.db"))
    yield served
    served.stop()


@pytest.fixture
def run(server):
    def invoke(*args: str):
        env = {"HOOKLAB_SERVER": server.url, "HOOKLAB_TOKEN": None}
        return CliRunner().invoke(cli, ["probe", *args], env=env, catch_exceptions=False)

    return invoke


def test_a_correct_receiver_gets_a_card_of_ticks_and_exit_0(run):
    secret = generate_secret()
    with receivers.serve(receivers.correct(secret)) as receiver:
        result = run(receiver.url, "--secret", secret, "--timeout", "5")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Probing {receiver.url} with payment_received (timeout 5 s)"
    checks = lines[1:12]
    assert [line.split()[1] for line in checks] == NAMES
    assert all(line.startswith("✓ ") for line in checks)
    assert checks[1].split()[2] == "400"  # wrong_signature: the status, then the time
    assert checks[1].endswith(" ms")
    assert lines[12] == "11 of 11 checks passed."
    assert "De-duplication itself cannot be seen from outside" in lines[13]


def test_a_receiver_that_ignores_the_timestamp_gets_two_crosses_and_exit_1(run):
    secret = generate_secret()
    with receivers.serve(receivers.signature_only(secret)) as receiver:
        result = run(receiver.url, "--secret", secret, "--event", "Site Published")
    assert result.exit_code == 1
    out = result.stdout
    assert "with site_published" in out.splitlines()[0]
    crosses = [line.split()[1] for line in out.splitlines() if line.startswith("✗ ")]
    assert crosses == ["stale_timestamp", "future_timestamp"]
    assert "got: answered HTTP 200, not a 4xx: it accepted what it should refuse" in out
    assert "a correct receiver refuses a timestamp 10 minutes old with a 4xx" in out
    assert "9 of 11 checks passed." in out


def test_json_prints_the_api_report_and_still_exits_1_on_a_failure(run):
    with receivers.serve(receivers.accepts_everything) as receiver:
        result = run(receiver.url, "--secret", generate_secret(), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and [c["name"] for c in report["checks"]] == NAMES


@pytest.mark.parametrize(
    "args, message",
    [
        (["ftp://127.0.0.1/x", "--secret", "whsec_" + "A" * 32], "URL must start with http://"),
        (["http://127.0.0.1:9/x", "--secret", "s3cr3t"], "--secret: a secret starts with whsec_"),
        (["http://127.0.0.1:9/x", "--secret", "whsec_" + "A" * 32, "--timeout", "0"], "--timeout"),
        (
            ["http://127.0.0.1:9/x", "--secret", "whsec_" + "A" * 32, "--timeout", "nan"],
            "--timeout",
        ),
        (["http://127.0.0.1:9/x", "--secret", "whsec_" + "A" * 32, "--event", "nope"], "'nope'"),
    ],
)
def test_bad_input_is_one_line_naming_it(run, args, message):
    result = run(*args)
    assert result.exit_code in (1, 2)
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and message in line


def test_the_readme_report_card_is_what_such_a_receiver_gets(run):
    # The README shows a run against signature_only; the same run gives the same card
    # (times and the port aside).
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Test your receiver", 1)[1]
    shown = re.findall(r"\n```\n(Probing .*?)```", section, re.S)[0]
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    with receivers.serve(receivers.signature_only(secret), "/webhooks") as receiver:
        result = run(receiver.url, "--secret", secret)

    def shape(card: str) -> list[str]:
        card = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT", card)
        return [re.sub(r"\s+\d+ ms$", " N ms", line) for line in card.strip().splitlines()]

    assert shape(result.stdout) == shape(shown)


def test_webhook_add_with_a_scheme_and_show_after_a_rotation(server):
    import requests

    env = {"HOOKLAB_SERVER": server.url, "HOOKLAB_TOKEN": None}
    runner = CliRunner()
    added = runner.invoke(
        cli,
        [
            "webhook",
            "add",
            "--name",
            "Keys",
            "--url",
            "http://127.0.0.1:9/x",
            "--event",
            "*",
            "--scheme",
            "v1 v1a",
            "--inactive",
            "--json",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    webhook = json.loads(added.stdout)
    assert webhook["signature_scheme"] == "v1 v1a" and webhook["public_key"].startswith("whpk_")
    rotated = requests.post(f"{server.url}/api/webhooks/{webhook['id']}/rotate", timeout=5)
    new = rotated.json()["webhook"]
    shown = runner.invoke(cli, ["webhook", "show", str(webhook["id"])], env=env)
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in shown.stdout.splitlines())
    assert fields["Signature scheme"] == "v1 v1a"
    assert fields["Secret"] == new["secret"] and fields["Public key"] == new["public_key"]
    assert fields["Previous secret"].startswith(webhook["secret"] + " (until ")
    assert fields["Previous public key"] == webhook["public_key"]
