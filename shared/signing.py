"""Standard Webhooks signatures over `id.timestamp.body`.

`v1`: HMAC-SHA256 with a `whsec_` secret (shared with the receiver). `v1a`: ed25519 with a
`whsk_` signing key that only the sender keeps; the receiver checks with the `whpk_` public key.
A `webhook-signature` header may carry several space-separated signatures (a rotation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "whsec_"
SIGNING_PREFIX = "whsk_"
PUBLIC_PREFIX = "whpk_"
SCHEME = "standard-webhooks"
SCHEMES = ("v1", "v1a", "v1 v1a")


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


def generate_signing_key() -> str:
    """A new ed25519 signing key for `v1a`: `whsk_` and the base64 of its raw 32 bytes."""
    return SIGNING_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _private_key(signing_key: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(signing_key[len(SIGNING_PREFIX) :], validate=True)
    except binascii.Error:
        raise SecretError("the part after whsk_ must be base64") from None
    if len(raw) != 32:
        raise SecretError("a whsk_ signing key carries 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)


def _public_key(public_key: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(public_key[len(PUBLIC_PREFIX) :], validate=True)
    except binascii.Error:
        raise SecretError("the part after whpk_ must be base64") from None
    if len(raw) != 32:
        raise SecretError("a whpk_ public key carries 32 bytes (44 base64 characters)")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key(signing_key: str) -> str:
    """The `whpk_` public key of a `whsk_` signing key (standard padded base64 of 32 bytes)."""
    raw = _private_key(signing_key).public_key().public_bytes_raw()
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


def check_key(key: str) -> str | None:
    """Like check_secret, but a `whpk_` public key (a bin checking `v1a`) is fine too."""
    if isinstance(key, str) and key.startswith(PUBLIC_PREFIX):
        try:
            _public_key(key)
        except SecretError as exc:
            return str(exc)
        return None
    if not isinstance(key, str) or not key.startswith(PREFIX):
        return "a secret is whsec_ (or, for v1a signatures, a whpk_ public key) followed by base64"
    return check_secret(key)


def check_signing_secret(secret: str) -> str | None:
    """Like check_secret, but a `whsk_` signing key (a `v1a` sender) is fine too."""
    if isinstance(secret, str) and secret.startswith(SIGNING_PREFIX):
        try:
            _private_key(secret)
        except SecretError as exc:
            return str(exc)
        return None
    return check_secret(secret)


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature: `v1,<base64 HMAC>` with a `whsec_` secret, `v1a,<base64>` with `whsk_`."""
    to_sign = _signed_content(msg_id, timestamp, body)
    if secret.startswith(SIGNING_PREFIX):
        return "v1a," + base64.b64encode(_private_key(secret).sign(to_sign)).decode()
    digest = hmac.new(secret_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_all(keys: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: one signature per key, space-separated."""
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def _matches(key: str, candidate: str, msg_id: str, ts: int, body: bytes) -> bool:
    """Whether one `version,signature` candidate was made with `key` (whsec_ or whpk_)."""
    version, _, value = candidate.partition(",")
    if key.startswith(PUBLIC_PREFIX):
        if version != "v1a":
            return False
        try:
            raw = base64.b64decode(value, validate=True)
            _public_key(key).verify(raw, _signed_content(msg_id, ts, body))
        except (binascii.Error, ValueError, InvalidSignature):
            return False
        return True
    if version != "v1":
        return False
    expected = sign(key, msg_id, ts, body).split(",", 1)[1]
    return hmac.compare_digest(value, expected)


TOLERANCE_S = 5 * 60  # Standard Webhooks' default: older or newer messages are refused


def verify(
    secret: str, headers: dict[str, str], body: bytes, received_at_s: float | None = None
) -> tuple[bool, str]:
    """Check a message's Standard Webhooks signature; returns (valid, reason in words).

    `secret` is a `whsec_` secret (checks `v1`) or a `whpk_` public key (checks `v1a`); any
    one of the header's space-separated signatures may match.

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
        _public_key(secret) if secret.startswith(PUBLIC_PREFIX) else secret_key(secret)
    except SecretError as exc:
        return False, f"the bin's secret is unusable: {exc}"
    # The header may carry several space-separated signatures (during a secret rotation).
    for candidate in signature.split():
        if _matches(secret, candidate, msg_id, ts, body):
            if received_at_s is not None and abs(received_at_s - ts) > TOLERANCE_S:
                return False, (
                    f"signature matches, but webhook-timestamp is {abs(received_at_s - ts):.0f} s "
                    f"away from when it arrived (more than {TOLERANCE_S} s: a replay?)"
                )
            return True, "signature matches the bin's secret"
    return False, "signature does not match the bin's secret"
