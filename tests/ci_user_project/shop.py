"""A tiny shop: the application this project tests."""

from __future__ import annotations

import base64
import hashlib
import hmac

import requests


class NotifyError(RuntimeError):
    """The receiver of a notification did not accept it."""


def notify_order_paid(webhook_url: str, order_id: int, amount_cents: int) -> None:
    """Tell the configured webhook URL that an order was paid."""
    response = requests.post(
        webhook_url.rstrip("/") + "/orders",
        json={"order_id": order_id, "amount": amount_cents, "status": "paid"},
        headers={"X-Shop-Event": "order.paid"},
        timeout=5,
    )
    if response.status_code >= 300:
        raise NotifyError(f"the receiver answered {response.status_code}")


def signature_is_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The shop's own check of a Standard Webhooks signature (HMAC-SHA256, whsec_ secret)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{lowered['webhook-id']}.{lowered['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(part.partition(",")[2], expected)
        for part in lowered["webhook-signature"].split()
    )
