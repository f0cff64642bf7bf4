"""v1a (ed25519) signatures and secret rotation, through a real `hooklab serve` and receivers.

v1a signatures are checked with the `cryptography` package from the public key alone; v1 ones
with the official `standardwebhooks` package.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook, WebhookVerificationError

from tests import receivers
from tests.served import start


def wait_for(check, timeout: float = 10.0, what: str = "condition"):
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rotation")
    served = start(tmp, "--db", str(tmp / "rotation.db"))
    yield served
    served.stop()


@pytest.fixture
def receiver():
    with receivers.serve(receivers.accepts_everything) as running:
        yield running


def add_webhook(base: str, url: str, **fields) -> dict:
    body = {"name": "Receiver", "url": url, "event": "payment_received", **fields}
    response = requests.post(f"{base}/api/webhooks", json=body, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()


def deliver(base: str, receiver: receivers.Receiver) -> receivers.Received:
    """Fire payment_received and return what the receiver got for it."""
    before = len(receiver.received)
    response = requests.post(f"{base}/api/events/payment_received", json={"n": 1}, timeout=5)
    assert response.status_code == 202, response.text
    wait_for(lambda: len(receiver.received) > before, what="the delivery")
    return receiver.received[before]


def v1a_verifies(public_key: str, received: receivers.Received) -> bool:
    """Check the delivery's v1a signature(s) with `cryptography`, knowing only `whpk_…`."""
    assert public_key.startswith("whpk_")
    raw = base64.b64decode(public_key[len("whpk_") :], validate=True)
    assert len(raw) == 32 and public_key[len("whpk_") :] == base64.b64encode(raw).decode()
    key = Ed25519PublicKey.from_public_bytes(raw)
    headers = received.headers
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + received.body
    for candidate in headers["webhook-signature"].split():
        version, _, value = candidate.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(value), signed)
        except InvalidSignature:
            continue
        return True
    return False


def v1_verifies(secret: str, received: receivers.Received) -> bool:
    try:
        Webhook(secret).verify(received.body, received.headers)
    except WebhookVerificationError:
        return False
    return True


def test_a_v1a_delivery_verifies_with_the_public_key_alone(server, receiver):
    webhook = add_webhook(server.url, receiver.url, signature_scheme="v1a")
    assert webhook["signature_scheme"] == "v1a"
    received = deliver(server.url, receiver)
    [signature] = received.headers["webhook-signature"].split()
    assert signature.startswith("v1a,")
    assert v1a_verifies(webhook["public_key"], received)
    assert not v1_verifies(webhook["secret"], received)
    # Another webhook's public key does not verify it.
    other = add_webhook(server.url, "http://127.0.0.1:9/x", signature_scheme="v1a", active=False)
    assert not v1a_verifies(other["public_key"], received)


def test_both_schemes_carry_one_signature_each(server, receiver):
    webhook = add_webhook(server.url, receiver.url, signature_scheme="v1 v1a")
    received = deliver(server.url, receiver)
    versions = [s.split(",")[0] for s in received.headers["webhook-signature"].split()]
    assert versions == ["v1", "v1a"]
    assert v1_verifies(webhook["secret"], received)
    assert v1a_verifies(webhook["public_key"], received)


def test_a_v1_webhook_shows_no_public_key_until_it_switches(server):
    webhook = add_webhook(server.url, "http://127.0.0.1:9/x", active=False)
    assert webhook["signature_scheme"] == "v1" and "public_key" not in webhook
    changed = requests.patch(
        f"{server.url}/api/webhooks/{webhook['id']}", json={"signature_scheme": "v1a"}, timeout=5
    ).json()
    assert changed["public_key"].startswith("whpk_")


@pytest.mark.parametrize("scheme", ["v2", "v1a v1", "", None, ["v1"]])
def test_an_unknown_signature_scheme_is_a_422(server, scheme):
    response = requests.post(
        f"{server.url}/api/webhooks",
        json={"name": "x1", "url": "http://127.0.0.1:9/", "event": "*", "signature_scheme": scheme},
        timeout=5,
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "signature_scheme"


def test_during_the_grace_period_old_and_new_secrets_both_verify(server, receiver):
    webhook = add_webhook(server.url, receiver.url)
    old = webhook["secret"]
    response = requests.post(f"{server.url}/api/webhooks/{webhook['id']}/rotate", timeout=5)
    assert response.status_code == 200, response.text
    rotated = response.json()
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert 23.9 * 3600 < expires.timestamp() - time.time() <= 24 * 3600  # the default grace

    shown = requests.get(f"{server.url}/api/webhooks/{webhook['id']}", timeout=5).json()
    assert shown["secret"] == new and shown["previous_secret"] == old
    assert shown["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]

    received = deliver(server.url, receiver)
    assert len(received.headers["webhook-signature"].split()) == 2
    assert v1_verifies(old, received)  # a receiver that knows only the old secret
    assert v1_verifies(new, received)  # and one that knows only the new one


def test_rotating_again_keeps_only_the_newest_previous_secret(server, receiver):
    webhook = add_webhook(server.url, receiver.url, signature_scheme="v1 v1a")
    first, first_key = webhook["secret"], webhook["public_key"]
    base = f"{server.url}/api/webhooks/{webhook['id']}"
    second = requests.post(f"{base}/rotate", timeout=5).json()["webhook"]
    third = requests.post(f"{base}/rotate", timeout=5).json()["webhook"]
    assert third["previous_secret"] == second["secret"]
    assert third["previous_public_key"] == second["public_key"]

    received = deliver(server.url, receiver)
    assert len(received.headers["webhook-signature"].split()) == 4  # v1 and v1a, new and previous
    assert v1_verifies(third["secret"], received) and v1_verifies(second["secret"], received)
    assert v1a_verifies(third["public_key"], received)
    assert v1a_verifies(second["public_key"], received)
    assert not v1_verifies(first, received) and not v1a_verifies(first_key, received)


def test_regenerating_ends_the_previous_secret_at_once(server, receiver):
    webhook = add_webhook(server.url, receiver.url)
    base = f"{server.url}/api/webhooks/{webhook['id']}"
    rotated = requests.post(f"{base}/rotate", timeout=5).json()
    regenerated = requests.post(f"{base}/regenerate-secret", timeout=5).json()
    assert regenerated["previous_secret_expires_at"] is None
    assert "previous_secret" not in regenerated
    received = deliver(server.url, receiver)
    assert len(received.headers["webhook-signature"].split()) == 1
    assert v1_verifies(regenerated["secret"], received)
    assert not v1_verifies(rotated["secret"], received)


def test_rotating_a_missing_webhook_is_a_404(server):
    response = requests.post(f"{server.url}/api/webhooks/999999/rotate", timeout=5)
    assert response.status_code == 404


def test_after_the_grace_period_only_the_new_secret_verifies(tmp_path, receiver):
    served = start(
        tmp_path, "--db", str(tmp_path / "grace.db"), env={"HOOKLAB_ROTATION_GRACE_S": "0.5"}
    )
    try:
        webhook = add_webhook(served.url, receiver.url)
        old = webhook["secret"]
        base = f"{served.url}/api/webhooks/{webhook['id']}"
        new = requests.post(f"{base}/rotate", timeout=5).json()["secret"]
        # Wait for the server to say the old secret is over, rather than for a fixed time.
        wait_for(
            lambda: requests.get(base, timeout=5).json()["previous_secret_expires_at"] is None,
            what="the grace period to end",
        )
        received = deliver(served.url, receiver)
    finally:
        served.stop()
    assert len(received.headers["webhook-signature"].split()) == 1
    assert v1_verifies(new, received)
    assert not v1_verifies(old, received)


def test_a_bin_with_a_public_key_checks_v1a_signatures(server):
    created = requests.post(f"{server.url}/api/bins", json={"name": "v1a"}, timeout=5).json()
    webhook = add_webhook(server.url, created["url"], signature_scheme="v1 v1a")
    bin_url = f"{server.url}/api/bins/{created['id']}"
    patched = requests.patch(bin_url, json={"secret": webhook["public_key"]}, timeout=5)
    assert patched.status_code == 200, patched.text
    requests.post(f"{server.url}/api/events/payment_received", timeout=5).raise_for_status()

    def captured():
        listed = requests.get(f"{bin_url}/requests", timeout=5).json()
        found = listed["requests"] if isinstance(listed, dict) else listed
        return found and requests.get(f"{bin_url}/requests/{found[0]['id']}", timeout=5).json()

    check = wait_for(captured, what="the capture")["signature"]
    assert check["valid"] is True, check


@pytest.mark.parametrize("secret", ["whpk_abc", "whpk_" + "A" * 40, "whsk_" + "A" * 44])
def test_a_bin_refuses_a_key_that_is_not_one(server, secret):
    created = requests.post(f"{server.url}/api/bins", json={"name": "k"}, timeout=5).json()
    response = requests.patch(
        f"{server.url}/api/bins/{created['id']}", json={"secret": secret}, timeout=5
    )
    assert response.status_code == 422 and response.json()["error"]["field"] == "secret"


def test_webhooks_of_an_older_database_get_a_signing_key(tmp_path):
    import sqlite_utils

    from hooklab.app.factory import open_store
    from hooklab.bin_server.schema import migrations as bin_migrations
    from hooklab.sender.schema import migrations as sender_migrations
    from hooklab.shared.signing import public_key

    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    bin_migrations.apply(db)
    sender_migrations.apply(db, stop_before="m003_signature_scheme_and_rotation")
    db.execute(
        "INSERT INTO webhooks (name, url, event, secret, timeout_s, created_at, updated_at) "
        "VALUES ('Old', 'http://127.0.0.1:9/', '*', 'whsec_" + "A" * 32 + "', 10, 0, 0)"
    )
    db.conn.commit()
    db.close()

    store = open_store(str(path))
    store.migrate()
    [row] = store.conn.execute("SELECT signature_scheme, signing_key FROM webhooks").fetchall()
    assert row[0] == "v1" and public_key(row[1]).startswith("whpk_")
    store.close()


def test_the_webhook_form_takes_a_scheme_and_the_page_shows_the_public_key(client):
    created = client.post(
        "/api/webhooks",
        json={"name": "Keys", "url": "http://127.0.0.1:9/x", "event": "*", "active": False},
    ).get_json()
    form = {
        "name": "Keys",
        "url": "http://127.0.0.1:9/x",
        "event": "*",
        "payload_format": "flat",
        "timeout_s": "10",
    }
    refused = client.post(f"/webhooks/{created['id']}", data={**form, "signature_scheme": "v2"})
    assert refused.status_code == 422
    assert b'data-error-for="signature_scheme"' in refused.data
    saved = client.post(f"/webhooks/{created['id']}", data={**form, "signature_scheme": "v1a"})
    assert saved.status_code == 303
    page = client.get(f"/webhooks/{created['id']}").get_data(as_text=True)
    public_key = client.get(f"/api/webhooks/{created['id']}").get_json()["public_key"]
    assert f'<code id="public-key" class="wrap">{public_key}</code>' in page
    assert '<option value="v1a" selected>' in page
