"""Standard Webhooks signatures: HMAC-SHA256 over `id.timestamp.body` with a `whsec_` secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
SCHEME = "standard-webhooks"


class SecretError(ValueError):
    """A secret that is not `whsec_` followed by base64."""


def generate_secret() -> str:
    """A new random secret, `whsec_` and 32 base64-encoded random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: the base64 after `whsec_` (a secret without it is used as is)."""
    if secret.startswith(PREFIX):
        try:
            return base64.b64decode(secret[len(PREFIX) :], validate=True)
        except binascii.Error:
            raise SecretError("the part after whsec_ must be base64") from None
    return secret.encode()


def check_secret(secret: str) -> str | None:
    """An error message for an unusable secret, or None when it is fine."""
    if not isinstance(secret, str) or not secret.startswith(PREFIX):
        return "a secret starts with whsec_ followed by base64"
    try:
        key = secret_key(secret)
    except SecretError as exc:
        return str(exc)
    if len(key) < 16:
        return "a secret carries at least 16 bytes (24 base64 characters after whsec_)"
    return None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one message: `v1,<base64 HMAC>`."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


TOLERANCE_S = 5 * 60  # Standard Webhooks' default: older or newer messages are refused


def verify(
    secret: str, headers: dict[str, str], body: bytes, received_at_s: float | None = None
) -> tuple[bool, str]:
    """Check a message's Standard Webhooks signature; returns (valid, reason in words).

    With `received_at_s` (when the message arrived), a timestamp more than five minutes away
    from it is refused as a receiver would, to stop replays.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signature = lowered.get("webhook-signature")
    if not (msg_id and timestamp and signature):
        return False, "no webhook-id, webhook-timestamp and webhook-signature headers"
    try:
        ts = int(timestamp)
    except ValueError:
        return False, "webhook-timestamp is not a whole number of seconds"
    try:
        expected = sign(secret, msg_id, ts, body).split(",", 1)[1]
    except SecretError as exc:
        return False, f"the bin's secret is unusable: {exc}"
    # The header may carry several space-separated signatures (during a secret rotation).
    for candidate in signature.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            if received_at_s is not None and abs(received_at_s - ts) > TOLERANCE_S:
                return False, (
                    f"signature matches, but webhook-timestamp is {abs(received_at_s - ts):.0f} s "
                    f"away from when it arrived (more than {TOLERANCE_S} s: a replay?)"
                )
            return True, "signature matches the bin's secret"
    return False, "signature does not match the bin's secret"
