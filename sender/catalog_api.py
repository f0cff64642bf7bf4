"""The catalog's JSON API: one event, its schema, payload checks, user events and imports.

See ../shared/design.md, "The catalog, its schemas, and payload checks". Listing and firing
(`GET /api/events`, `POST /api/events/<slug>`) are in `hooklab.sender.api`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from hooklab.sender import user_events
from hooklab.sender.api import flag_arg, json_body
from hooklab.sender.catalog import Catalog, get_catalog
from hooklab.sender.openapi import ImportRefused, plan_import
from hooklab.shared.context import get_settings, get_store
from hooklab.shared.errors import ApiError

bp = Blueprint("sender_catalog", __name__)


def check_payload(slug: str, payload: Any) -> dict[str, Any]:
    """Check a payload against an event of the current app's catalog (404 for no such event).

    `{"event": {"slug", "name"}, "valid", "problems": [{"path", "message"}], "warnings"?}`;
    app/ hands this to the bin, which checks captured requests with it.
    """
    catalog = get_catalog()
    event = catalog.require(slug)
    return {"event": {"slug": event.slug, "name": event.name}, **catalog.check(event, payload)}


def _require_user_event(catalog: Catalog, slug: str) -> dict[str, Any]:
    if catalog.is_builtin(slug):
        raise ApiError(
            403,
            "read_only",
            f"{slug!r} is a built-in event: built-in events are read-only. "
            "Add your own with POST /api/events.",
        )
    found = user_events.read_row(get_store().conn, slug)
    if found is None:
        raise ApiError(404, "event_not_found", f"No event {slug!r} in the catalog.")
    return found


@bp.get("/api/events/<slug>")
def read_event(slug: str):
    """One event with a fresh example payload and its schema."""
    return jsonify(get_catalog().require(slug).to_json(with_schema=True))


@bp.get("/api/events/<slug>/schema")
def event_schema(slug: str):
    """The event's JSON Schema (draft 2020-12)."""
    response = jsonify(get_catalog().require(slug).schema)
    response.mimetype = "application/schema+json"
    return response


@bp.post("/api/events/<slug>/check")
def check_event_payload(slug: str):
    """Check the JSON body against the event's schema: `{"valid", "problems", "warnings"?}`."""
    payload = json_body(any_value=True)  # any JSON value: one that is no object is a problem
    return jsonify(check_payload(slug, payload))


@bp.post("/api/events")
def create_event():
    """Add a user event: slug, name, description, payload (the example), schema?; 201."""
    catalog = get_catalog()
    data = json_body()
    if isinstance(data, dict) and isinstance(data.get("slug"), str):
        if user_events.read_row(get_store().conn, data["slug"]) is not None:
            raise ApiError(
                409,
                "conflict",
                f"An event {data['slug']!r} exists already; change it with PATCH.",
                "slug",
            )
    columns = user_events.check_fields(data, catalog.is_builtin)
    user_events.save_events(get_store(), [columns], source="api")
    response = jsonify(catalog.require(columns["slug"]).to_json(with_schema=True))
    response.status_code = 201
    response.headers["Location"] = f"/api/events/{columns['slug']}"
    return response


@bp.patch("/api/events/<slug>")
def change_event(slug: str):
    """Change a user event's name, description, example payload or schema."""
    catalog = get_catalog()
    current = _require_user_event(catalog, slug)
    columns = user_events.check_fields(json_body(), catalog.is_builtin, current)
    user_events.update_event(get_store(), slug, columns)
    return jsonify(catalog.require(slug).to_json(with_schema=True))


@bp.delete("/api/events/<slug>")
def delete_event(slug: str) -> Response:
    """Delete a user event; 204. One that webhooks subscribe to is refused (409
    `event_in_use`, naming them): they would be left with an event nobody can fire or test."""
    _require_user_event(get_catalog(), slug)
    user_events.delete_event(get_store(), slug, unless_used=True)
    return Response(status=204)


@bp.post("/api/events/import")
def import_events():
    """Import an OpenAPI 3.1 document's webhooks (the JSON body) as user events.

    `?prefix=` goes before each webhook's name to make its slug; `?dry_run=1` says what would
    be added and updated without changing anything. All or nothing: a refused document adds
    no event (422 with the reason).
    """
    dry_run = flag_arg("dry_run", False)
    prefix = request.args.get("prefix", "")
    # A provider's document can be tens of MB: more than the body limit of other routes.
    request.max_content_length = get_settings().max_import_bytes
    document = json_body()
    catalog = get_catalog()
    try:
        plan = plan_import(document, prefix, catalog.is_builtin)
    except ImportRefused as exc:
        raise ApiError(422, "import_refused", f"Import refused: {exc}.") from None
    slugs = [event["slug"] for event in plan.events]
    existing = user_events.all_slugs(get_store().conn)
    if not dry_run:
        user_events.save_events(get_store(), plan.events, source="import")
    return jsonify(
        {
            "dry_run": dry_run,
            "prefix": prefix,
            "added": [s for s in slugs if s not in existing],
            "updated": [s for s in slugs if s in existing],
            "generated_examples": [e["slug"] for e in plan.events if e["example_generated"]],
            "skipped": plan.skipped,
            "notes": plan.notes,
        }
    )
