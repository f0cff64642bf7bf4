"""The manager's pages: the webhooks list and form, one webhook with its delivery log.

Forms post to these routes and work without JavaScript; on a mistake the page comes back
with the message next to the field and what the person typed still in it.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for

from hooklab.sender import webhooks
from hooklab.sender.catalog import get_catalog
from hooklab.sender.webhooks import PAYLOAD_FORMATS
from hooklab.shared.context import get_settings, get_store
from hooklab.shared.errors import ApiError, FieldErrors
from hooklab.shared.params import SECONDS, shown

bp = Blueprint("sender_pages", __name__)

EDITABLE = ("name", "url", "event", "payload_format", "timeout_s", "signature_scheme")
# User events shown per page of a group on the Webhooks page (imports hold thousands).
EVENTS_PER_PAGE = 25
MAX_PAGE = 10**6


def _form_fields(names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted form as webhook fields, plus errors for values that are not even numbers."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in names:
        if name not in request.form:
            continue
        text = request.form.get(name, "")
        if name == "timeout_s":
            # Plain digits only: float() also takes "1_0", "١٢", "1e3" and "inf".
            plain = text.strip(" \t")
            if SECONDS.fullmatch(plain) and len(plain) <= 40:
                values[name] = float(plain)
            else:
                errors[name] = "Timeout is a number of seconds, e.g. 10 or 2.5."
        elif name == "secret":
            if text.strip():
                values[name] = text.strip()
        else:
            values[name] = text
    return values, errors


def _webhook_view(webhook: dict) -> dict:
    """A webhook as the templates show it (no secret: the page fetches it when asked)."""
    return webhooks.webhook_to_json(get_store(), webhook, get_catalog(), with_secret=False)


def _event_row(event) -> dict:
    return {
        "slug": event.slug,
        "name": event.name,
        "description": event.description,
        "builtin": event.builtin,
        "payload": json.dumps(event.example(), indent=2, ensure_ascii=False),
        "schema": json.dumps(event.schema, indent=2, ensure_ascii=False),
    }


def _page_arg() -> int:
    text = request.args.get("page", "1").strip()
    # isdigit() alone takes "²" and 10,000 digits, which int() refuses (a 500): ASCII, short.
    whole = text.isascii() and text.isdigit() and len(text) <= 9
    if not whole or not 1 <= int(text) <= MAX_PAGE:
        abort(400, description=f"page must be a whole number from 1 to {MAX_PAGE}, not {text!r}.")
    return int(text)


def _events_section() -> dict:
    """The events table of the Webhooks page: one group (built-in, or a prefix), one page."""
    catalog = get_catalog()
    group = request.args.get("group")  # None: the built-in events; "" the unprefixed ones
    groups = [
        {
            "label": "Built-in",
            "count": len(catalog.builtins()),
            "url": url_for("sender_pages.webhooks_page", _anchor="events"),
            "current": group is None,
        }
    ]
    for prefix, count in catalog.groups():
        groups.append(
            {
                "label": prefix or "No prefix",
                "count": count,
                "url": url_for("sender_pages.webhooks_page", group=prefix, _anchor="events"),
                "current": group == prefix,
            }
        )
    page, pages = 1, 1
    if group is None:
        shown = catalog.builtins()
    else:
        total = catalog.group_size(group)
        pages = max(1, -(-total // EVENTS_PER_PAGE))
        page = min(_page_arg(), pages)
        shown = catalog.group(group, (page - 1) * EVENTS_PER_PAGE, EVENTS_PER_PAGE)

    def page_url(number: int) -> str:
        return url_for("sender_pages.webhooks_page", group=group, page=number, _anchor="events")

    return {
        "event_rows": [_event_row(event) for event in shown],
        "event_groups": groups,
        "event_page": {
            "number": page,
            "pages": pages,
            "previous": page_url(page - 1) if page > 1 else None,
            "next": page_url(page + 1) if page < pages else None,
        },
        "event_total": sum(g["count"] for g in groups),
    }


def _form_context(values: dict | None = None, errors: dict | None = None) -> dict:
    return {
        "values": values or {},
        "errors": errors or {},
        "events": get_catalog().choices(),
        "payload_formats": PAYLOAD_FORMATS,
        "default_timeout_s": get_settings().default_timeout_s,
        "rotation_grace_s": get_settings().rotation_grace_s,
    }


@bp.get("/webhooks")
def webhooks_page():
    """The webhooks: "Add New Webhook", the list, then the events table."""
    listed = [_webhook_view(w) for w in webhooks.list_webhooks(get_store())]
    return render_template("webhooks.html", webhooks=listed, **_events_section(), **_form_context())


@bp.get("/webhooks/new")
def new_webhook_page():
    """The "Add New Webhook" form on its own page."""
    return render_template("webhook_new.html", **_form_context())


@bp.post("/webhooks/new")
def create_webhook_form():
    """Add a webhook from the form; on a mistake, the form again with the message by the field."""
    values, errors = _form_fields((*EDITABLE, "secret"))
    try:
        columns = webhooks.check_fields(values, get_catalog(), get_settings())
    except FieldErrors as exc:
        errors = {**exc.errors, **errors}
    if errors:
        shown = {name: request.form.get(name, "") for name in (*EDITABLE, "secret")}
        return render_template("webhook_new.html", **_form_context(shown, errors)), 422
    webhook = webhooks.create_webhook(get_store(), columns, get_settings())
    return redirect(f"/webhooks/{webhook['id']}?created=1", code=303)


def _require(webhook_id: str) -> dict:
    try:
        return webhooks.require_webhook(get_store(), webhook_id)
    except ApiError:
        # An id that is not a number is quoted as text: a NUL or a newline is shown, not sent.
        named = webhook_id if webhook_id.isascii() and webhook_id.isdigit() else shown(webhook_id)
        abort(404, description=f"There is no webhook {named}; it may have been deleted.")


def _render_webhook(webhook: dict, values=None, errors=None, notice: str | None = None):
    view = _webhook_view(webhook)
    shown = values or {name: view[name] for name in EDITABLE}
    return render_template(
        "webhook.html", webhook=view, notice=notice, **_form_context(shown, errors)
    )


@bp.get("/webhooks/<webhook_id>")
def webhook_page(webhook_id: str):
    """One webhook: settings, secret, Send Test Event, delivery log."""
    webhook = _require(webhook_id)
    notice = None
    if request.args.get("created"):
        notice = "Webhook added. Press “Send Test Event” to see what it sends."
        others = webhooks.also_delivering(get_store(), webhook)
        if others:
            named = ", ".join(f"#{other['id']} “{other['name']}”" for other in others[:3])
            more = f" and {len(others) - 3} more" if len(others) > 3 else ""
            notice += (
                f" Note: {named}{more} already deliver{'s' if len(others) == 1 else ''} "
                "some of its events to the same URL, so each such event arrives there more "
                "than once; delete one if that was a second click."
            )
    elif request.args.get("saved"):
        notice = "Settings saved."
    return _render_webhook(webhook, notice=notice)


@bp.post("/webhooks/<webhook_id>")
def save_webhook_form(webhook_id: str):
    """Save the settings form of a webhook."""
    webhook = _require(webhook_id)
    values, errors = _form_fields(EDITABLE)
    try:
        columns = webhooks.check_fields(values, get_catalog(), get_settings(), partial=True)
    except FieldErrors as exc:
        errors = {**exc.errors, **errors}
    if errors:
        shown = {name: request.form.get(name, "") for name in EDITABLE}
        return _render_webhook(webhook, shown, errors), 422
    webhooks.update_webhook(get_store(), webhook["id"], columns)
    return redirect(f"/webhooks/{webhook['id']}?saved=1", code=303)


@bp.post("/webhooks/<webhook_id>/enable")
def enable_webhook_form(webhook_id: str):
    """Switch a webhook on (clears the reason it was disabled)."""
    webhook = _require(webhook_id)
    webhooks.update_webhook(get_store(), webhook["id"], {"active": 1})
    return redirect(f"/webhooks/{webhook['id']}", code=303)


@bp.post("/webhooks/<webhook_id>/disable")
def disable_webhook_form(webhook_id: str):
    """Switch a webhook off: fired events no longer reach it."""
    webhook = _require(webhook_id)
    webhooks.update_webhook(get_store(), webhook["id"], {"active": 0})
    return redirect(f"/webhooks/{webhook['id']}", code=303)


@bp.post("/webhooks/<webhook_id>/delete")
def delete_webhook_form(webhook_id: str):
    """Delete a webhook and its delivery log."""
    webhook = _require(webhook_id)
    webhooks.delete_webhook(get_store(), webhook["id"])
    return redirect("/webhooks", code=303)
