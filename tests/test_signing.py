"""Standard Webhooks signatures: the spec's test vector, our headers, redaction in the log."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from hooklab.sender.attempt import REDACTED, delivery_headers, redact
from hooklab.shared.signing import check_secret, generate_secret, sign, verify

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_webhooks_test_vector():
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_test_vector_fails_with_one_byte_changed():
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, b'{"test": 2432232315}') != (
        VECTOR_SIGNATURE
    )


def test_delivery_headers_verify_with_the_standardwebhooks_package():
    secret = generate_secret()
    body = b'{"customer_avatar":"<img src=x>","wu_version":"2.4.12"}'
    headers = delivery_headers(secret, "msg_abc", body, "payment_received", 7, 3)
    assert Webhook(secret).verify(body, headers) == {
        "customer_avatar": "<img src=x>",
        "wu_version": "2.4.12",
    }
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("hooklab/")
    assert headers["webhook-id"] == "msg_abc"
    assert headers["X-Hooklab-Event"] == "payment_received"
    assert headers["X-Hooklab-Delivery"] == "7"
    assert headers["X-Hooklab-Attempt"] == "3"
    assert "X-Hooklab-Test" not in headers
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5


def test_a_wrong_secret_does_not_verify():
    body = b"{}"
    headers = delivery_headers(generate_secret(), "msg_x", body, "e", 1, 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)
    assert verify(generate_secret(), headers, body)[0] is False


def test_test_sends_say_so():
    headers = delivery_headers(generate_secret(), "msg_x", b"{}", "e", 1, 1, test=True)
    assert headers["X-Hooklab-Test"] == "true"


def test_the_logged_headers_hide_the_signature():
    headers = delivery_headers(generate_secret(), "msg_x", b"{}", "e", 1, 1)
    logged = redact([[k, v] for k, v in headers.items()])
    assert dict(logged)["webhook-signature"] == REDACTED
    assert dict(logged)["webhook-id"] == "msg_x"
    assert headers["webhook-signature"] not in str(logged)


def test_generated_secrets_are_usable_and_distinct():
    secrets = {generate_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(check_secret(s) is None for s in secrets)


@pytest.mark.parametrize(
    "secret", ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ="]
)
def test_unusable_secrets_are_named(secret):
    assert check_secret(secret)


def test_a_stale_timestamp_is_refused_relative_to_when_the_message_arrived():
    from hooklab.shared.signing import sign

    secret = generate_secret()
    body = b'{"a": 1}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1000000",
        "webhook-signature": sign(secret, "msg_1", 1_000_000, body),
    }
    assert verify(secret, headers, body, received_at_s=1_000_100)[0] is True
    valid, reason = verify(secret, headers, body, received_at_s=1_000_000 + 301)
    assert valid is False
    assert "301 s" in reason
    assert verify(secret, headers, body)[0] is True  # no arrival time: the HMAC alone


# ---- v1a (ed25519) and several signatures ------------------------------------------------------

# RFC 8032's first ed25519 test vector: this seed has this public key.
RFC8032_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def test_v1a_keys_and_signatures_match_the_rfc_8032_vector():
    import base64

    from hooklab.shared.signing import public_key, sign

    signing_key = "whsk_" + base64.b64encode(bytes.fromhex(RFC8032_SEED)).decode()
    shown = public_key(signing_key)
    assert shown == "whpk_" + base64.b64encode(bytes.fromhex(RFC8032_PUBLIC)).decode()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    version, _, value = sign(signing_key, "msg_1", 1, b"{}").partition(",")
    assert version == "v1a"
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(RFC8032_PUBLIC))
    key.verify(base64.b64decode(value), b"msg_1.1.{}")  # raises when it does not match


def test_verify_takes_a_public_key_and_any_one_of_several_signatures():
    from hooklab.shared.signing import generate_signing_key, public_key, sign_all

    signing_key, other = generate_signing_key(), generate_signing_key()
    secret = generate_secret()
    body = b'{"a": 1}'
    ts = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts)}
    headers["webhook-signature"] = sign_all([other, secret, signing_key], "msg_1", ts, body)
    assert verify(public_key(signing_key), headers, body, received_at_s=ts)[0] is True
    assert verify(secret, headers, body, received_at_s=ts)[0] is True
    assert verify(public_key(generate_signing_key()), headers, body)[0] is False
    assert verify(generate_secret(), headers, body)[0] is False
    assert verify(public_key(signing_key), headers, body + b" ")[0] is False
    valid, reason = verify("whpk_short", headers, body)
    assert valid is False and "unusable" in reason


def test_the_logged_headers_hide_every_signature_but_keep_their_versions():
    from hooklab.shared.signing import generate_signing_key

    keys = [generate_secret(), generate_signing_key()]
    headers = delivery_headers(keys, "msg_x", b"{}", "e", 1, 1)
    logged = dict(redact([[k, v] for k, v in headers.items()]))
    assert logged["webhook-signature"] == "v1,<redacted> v1a,<redacted>"
