"""The manager's JSON API (see ../shared/design.md, "Manager (sender side)")."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

from hooklab.sender import deliveries, delivery, probe, webhooks
from hooklab.sender.catalog import get_catalog
from hooklab.sender.firing import fire
from hooklab.sender.schemas import problems_summary
from hooklab.shared import json_input
from hooklab.shared.context import get_settings, get_store
from hooklab.shared.errors import ApiError
from hooklab.shared.params import path_number, query_int, refuse_unknown_params
from hooklab.shared.store import MAX_ROW_ID

bp = Blueprint("sender_api", __name__)

EMPTY = object()  # what json_body gives for an empty body, where `null` means something else

# Ids in this API's paths, as design.md wants a bad one answered: a 400 that names it.
PATH_IDS = {"webhook_id": "webhook id", "delivery_id": "delivery id"}


@bp.before_request
def _check_path_ids() -> None:
    """A webhook or delivery id that is not a whole number is a 400 naming it (a whole number
    no row has is left to the lookup: 404). After the app's own checks (token, origin)."""
    values = request.view_args or {}
    for field, what in PATH_IDS.items():
        if field in values:
            path_number(values[field], what, field)


def json_body(empty: Any = ..., *, any_value: bool = False) -> Any:
    """The request body as a JSON object (see `json_input.request_json`: the same reading and
    the same refusals, 400 `invalid_json` or `not_an_object`, as the bin API's)."""
    return json_input.request_json(empty, any_value=any_value)


def flag_arg(name: str, default: bool) -> bool:
    """A true/false query parameter (1/0, true/false), or a 400 naming it."""
    text = request.args.get(name, "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ApiError(
        400, "bad_request", f"{name} must be 1 or 0 (true or false), not {text!r}.", name
    )


def _refuse_unfit_payload(slug: str, payload: dict) -> Response | None:
    """A 422 listing the problems when a user event's payload does not fit its schema."""
    catalog = get_catalog()
    event = catalog.get(slug)
    if event is None or event.builtin:
        return None
    result = catalog.check(event, payload)
    if result["valid"]:
        return None
    message = (
        f"The payload does not match the schema of {slug!r} "
        f"({problems_summary(result['problems'])}). "
        "Send it anyway with ?check=0 (hooklab fire --no-check)."
    )
    response = jsonify(
        {"error": {"code": "payload_invalid", "message": message, "field": "payload"}, **result}
    )
    response.status_code = 422
    return response


def _webhook_json(webhook: dict, with_secret: bool = True) -> dict:
    return webhooks.webhook_to_json(get_store(), webhook, get_catalog(), with_secret)


@bp.get("/api/events")
def list_events():
    """The catalog, each event with a fresh example payload (`?prefix=`: one group of them)."""
    prefix = request.args.get("prefix")
    catalog = get_catalog()
    if prefix is None:
        return jsonify([event.to_json() for event in catalog])
    return jsonify([event.to_json() for event in catalog.group(prefix)])


@bp.post("/api/events/<slug>")
def fire_event(slug: str):
    """Fire an event: the JSON body is the payload (empty: the example); 202.

    A payload for a user event is checked against its schema first (422 with the problems;
    `?check=0` sends it anyway, to test a receiver's own validation). Built-in events are not
    checked: the plugin itself sends payloads that differ from its catalog.
    """
    # Only an empty body stands for the example: `null` is a payload, and not an object.
    payload = json_body(empty=EMPTY, any_value=True)
    if payload is EMPTY:
        payload = None
    elif not isinstance(payload, dict):
        raise ApiError(422, "invalid", "The payload must be a JSON object.", "payload")
    if payload is not None and flag_arg("check", True):
        refused = _refuse_unfit_payload(slug, payload)
        if refused is not None:
            return refused
    key = request.headers.get("Idempotency-Key")
    result = fire(get_store(), slug, payload, key, catalog=get_catalog())
    response = jsonify(result)
    response.status_code = 202
    if result["replayed"]:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/api/webhooks")
def list_webhooks():
    """Every webhook, newest first (secrets are only shown one webhook at a time)."""
    return jsonify(
        [_webhook_json(w, with_secret=False) for w in webhooks.list_webhooks(get_store())]
    )


@bp.post("/api/webhooks")
def create_webhook():
    """Add a webhook; a whsec_ secret is generated when none is given; 201."""
    columns = webhooks.check_fields(json_body(), get_catalog(), get_settings())
    webhook = webhooks.create_webhook(get_store(), columns, get_settings())
    response = jsonify(_webhook_json(webhook))
    response.status_code = 201
    response.headers["Location"] = f"/api/webhooks/{webhook['id']}"
    return response


@bp.get("/api/webhooks/<webhook_id>")
def read_webhook(webhook_id: str):
    """One webhook, with its secret."""
    return jsonify(_webhook_json(webhooks.require_webhook(get_store(), webhook_id)))


@bp.patch("/api/webhooks/<webhook_id>")
def change_webhook(webhook_id: str):
    """Change some fields of a webhook (active: true enables it again)."""
    webhook = webhooks.require_webhook(get_store(), webhook_id)
    columns = webhooks.check_fields(json_body(), get_catalog(), get_settings(), partial=True)
    webhook = webhooks.update_webhook(get_store(), webhook["id"], columns)
    return jsonify(_webhook_json(webhook))


@bp.delete("/api/webhooks/<webhook_id>")
def delete_webhook(webhook_id: str) -> Response:
    """Delete a webhook with its delivery log; 204."""
    webhook = webhooks.require_webhook(get_store(), webhook_id)
    webhooks.delete_webhook(get_store(), webhook["id"])
    return Response(status=204)


@bp.post("/api/webhooks/<webhook_id>/regenerate-secret")
def regenerate_secret(webhook_id: str):
    """Give the webhook a new random secret; the old one stops working at once."""
    webhook = webhooks.require_webhook(get_store(), webhook_id)
    json_input.refuse_fields("regenerating a secret")
    return jsonify(_webhook_json(webhooks.regenerate_secret(get_store(), webhook["id"])))


@bp.post("/api/webhooks/<webhook_id>/rotate")
def rotate_secret(webhook_id: str):
    """A new secret; the previous one still signs deliveries until previous_secret_expires_at."""
    webhook = webhooks.require_webhook(get_store(), webhook_id)
    # The grace period is the server's setting (--rotation-grace-s), not a field.
    json_input.refuse_fields("a rotation")
    webhook = webhooks.rotate_secret(get_store(), webhook["id"], get_settings().rotation_grace_s)
    body = _webhook_json(webhook)
    return jsonify(
        {
            "secret": body["secret"],
            "previous_secret_expires_at": body["previous_secret_expires_at"],
            "webhook": body,
        }
    )


@bp.post("/api/webhooks/<webhook_id>/probe")
def probe_webhook(webhook_id: str):
    """Run the receiver checks against the webhook's URL and secret; waits for all of them."""
    body = json_body(empty={})
    return jsonify(
        probe.probe_webhook(get_store(), get_settings(), get_catalog(), webhook_id, body)
    )


@bp.post("/api/probe")
def probe_url():
    """Run the receiver checks against any URL and secret: `{url, secret, event?, timeout_s?}`."""
    return jsonify(probe.probe_url(get_store(), get_settings(), get_catalog(), json_body()))


@bp.post("/api/webhooks/<webhook_id>/test")
def test_webhook(webhook_id: str):
    """Send the event's example payload now and wait for the answer (logged as a test)."""
    body = json_body(empty={})
    unknown = sorted(set(body) - {"event"})
    if unknown:
        # As create and PATCH: a misspelt field is named, not quietly ignored.
        name = unknown[0]
        shown = name if len(name) <= 40 else name[:40] + "…"
        raise ApiError(
            422,
            "invalid",
            f"Unknown field {shown!r}; a test takes only event (for a webhook of all events).",
            name,
        )
    event = body.get("event")
    if "event" in body and not isinstance(event, str):
        kind = webhooks.json_kind(event)
        raise ApiError(422, "invalid", f"event must be an event slug (text), not {kind}.", "event")
    result = delivery.send_test(get_store(), get_settings(), get_catalog(), webhook_id, event)
    return jsonify(result)


# What GET /api/webhooks/<id>/deliveries reads of its query; anything else is refused, so a
# paging parameter of another API (`offset`, `page`) is not silently ignored.
DELIVERY_LOG_PARAMS = ("limit", "before", "after", "status")
DELIVERY_STATUSES = ("pending", "succeeded", "failed", "cancelled")


@bp.get("/api/webhooks/<webhook_id>/deliveries")
def list_deliveries(webhook_id: str):
    """A webhook's deliveries, newest first, with their attempts (`limit`, `before`, `after`,
    `status`). The body is the page, a bare array; `X-Total-Count` says how many deliveries
    match without `limit`, and a `Link` header with rel="next" gives the next, older page."""
    webhook = webhooks.require_webhook(get_store(), webhook_id)
    refuse_unknown_params(DELIVERY_LOG_PARAMS)
    status = request.args.get("status") or None
    if status is not None and status not in DELIVERY_STATUSES:
        raise ApiError(
            400, "bad_request", f"status is one of {', '.join(DELIVERY_STATUSES)}.", "status"
        )
    limit = query_int("limit", 50, 1, deliveries.MAX_LIMIT)
    before = query_int("before", None, 0, MAX_ROW_ID)
    after = query_int("after", None, 0, MAX_ROW_ID)
    store = get_store()
    found = deliveries.list_deliveries(
        store, get_catalog(), webhook["id"], limit, before, status, after
    )
    total = deliveries.count_deliveries(store, webhook["id"], before, status, after)
    response = jsonify(found)
    response.headers["X-Total-Count"] = str(total)
    if total > len(found):
        query = {"limit": limit, "before": found[-1]["id"], "after": after, "status": status}
        given = urlencode({k: v for k, v in query.items() if v is not None})
        response.headers["Link"] = f'<{request.path}?{given}>; rel="next"'
    return response


@bp.get("/api/deliveries/<delivery_id>")
def read_delivery(delivery_id: str):
    """One delivery with its attempts."""
    return jsonify(deliveries.get_delivery(get_store(), get_catalog(), delivery_id))


@bp.post("/api/deliveries/<delivery_id>/redeliver")
def redeliver(delivery_id: str):
    """One more attempt of the delivery now, same webhook-id; waits and returns the delivery."""
    json_input.refuse_fields("a redelivery")
    result = delivery.redeliver(get_store(), get_settings(), delivery_id)
    found = deliveries.get_delivery(get_store(), get_catalog(), result["delivery_id"])
    attempt = next(a for a in found["attempts"] if a["number"] == result["attempt_number"])
    return jsonify({"ok": result["ok"], "attempt": attempt, "delivery": found})
