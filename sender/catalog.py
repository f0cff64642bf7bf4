"""The event catalog: the fourteen Ultimate Multisite events, a catalog file's, and user events.

The default events carry the payload keys of the plugin's own mock data
(../shared/reference/ultimate-multisite-events.md); the reference codes it randomises per
render are generated fresh each time an example is built. Built-in events (the defaults and
those of a `--catalog` file) are read-only; user events live in the store
(`hooklab.sender.user_events`), so every process sees them and they survive a restart.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import string
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from hooklab.sender import user_events
from hooklab.sender.schemas import Checker, derive_schema
from hooklab.shared.errors import ApiError
from hooklab.shared.store import Store

WU_VERSION = "2.4.12"
MAX_CHECKERS = 512
SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
WILDCARD = "*"
ADMIN = "https://example.com/wp-admin/network/admin.php"
AVATAR = (
    "<img alt='' src='https://www.gravatar.com/avatar/"
    "ad516503a11cd5ca435acc9bb6523536?s=48&#038;d=mm&#038;r=g' "
    "class='avatar avatar-48 photo' height='48' width='48' loading='lazy' decoding='async'/>"
)


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the file, the event and the field."""


def reference_code() -> str:
    """A fresh reference code like the plugin's: 10 upper-case letters and digits."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(10))


def _payment() -> dict[str, Any]:
    code = reference_code()
    return {
        "payment_id": 0,
        "payment_status": "",
        "payment_reference_code": code,
        "payment_subtotal": "$ 0.00",
        "payment_subtotal_raw": 0,
        "payment_tax_total": "$ 0.00",
        "payment_tax_total_raw": 0,
        "payment_total": "$ 0.00",
        "payment_total_raw": 0,
        "payment_currency": "",
        "payment_product_names": "Test Product",
        "payment_date_created": "",
        "payment_gateway": "",
        "payment_invoice_url": f"https://example.com/?action=invoice&reference={code}",
        "payment_manage_url": f"{ADMIN}?page=wp-ultimo-edit-payment&id=0",
    }


def _membership() -> dict[str, Any]:
    return {
        "membership_id": 0,
        "membership_status": "",
        "membership_reference_code": reference_code(),
        "membership_initial_amount": "$ 0.00",
        "membership_initial_amount_raw": 0,
        "membership_amount": "$ 0.00",
        "membership_amount_raw": 0,
        "membership_currency": "",
        "membership_description": "Free!",
        "membership_gateway": "",
        "membership_date_expiration": "",
        "membership_manage_url": f"{ADMIN}?page=wp-ultimo-edit-membership&id=0",
    }


def _customer() -> dict[str, Any]:
    return {
        "customer_id": 0,
        "customer_name": "John McMocked",
        "customer_user_id": 1,
        "customer_user_email": "mockeduser@dev.dev",
        "customer_email_verification": "",
        "customer_avatar": AVATAR,
        "customer_billing_address": "Company Co.\ncompany@co.dev",
        "customer_manage_url": f"{ADMIN}?page=wp-ultimo-edit-customer&id=0",
    }


def _site() -> dict[str, Any]:
    return {
        "site_id": None,
        "site_title": "Example Site",
        "site_description": "This is an example of a site description.",
        "site_url": "http://examplesite.dev/",
        "site_admin_url": "http://examplesite.dev/wp-admin/",
        "site_manage_url": f"{ADMIN}?page=wp-ultimo-edit-site&id=0",
    }


def _domain() -> dict[str, Any]:
    return {
        "domain_id": 0,
        "domain_domain": "example.com",
        "domain_site_id": 1,
        "domain_stage": "checking-dns",
        # Strings, not booleans: that is what the plugin sends.
        "domain_active": "true",
        "domain_primary": "true",
        "domain_secure": "true",
        "domain_date_created": None,
        "domain_manage_url": f"{ADMIN}?page=wp-ultimo-edit-domain&id=0",
    }


def _billing() -> dict[str, Any]:
    return {
        "company_name": "Company Co.",
        "billing_email": "company@co.dev",
        "billing_address_line_1": "",
        "billing_address_line_2": "",
        "billing_country": "",
        "billing_state": "",
        "billing_city": "",
        "billing_zip_code": "",
    }


# Live model events leave empty billing fields out, so a schema must not require them.
BILLING_KEYS = frozenset(_billing())


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part)
    out["wu_version"] = WU_VERSION
    return out


@dataclass(frozen=True)
class Event:
    """One event of the catalog: slug, display name, description, example payload and schema.

    `written_schema` is the schema its author gave; without one, the schema is derived from the
    example, every key required but those in `optional`.
    """

    slug: str
    name: str
    description: str
    make_payload: Callable[[], dict[str, Any]] = field(repr=False)
    optional: frozenset[str] = frozenset()
    written_schema: dict[str, Any] | None = field(default=None, repr=False)
    # A user event's written schema as stored, parsed only when it is used.
    schema_text: str | None = field(default=None, repr=False)
    builtin: bool = True
    # For user events: changes whenever the schema does (the key of a compiled checker).
    version: int = 0

    def example(self) -> dict[str, Any]:
        """A fresh example payload (new reference codes each time)."""
        return self.make_payload()

    @cached_property
    def schema(self) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12): the written one, else derived from the example."""
        if self.written_schema is not None:
            return self.written_schema
        if self.schema_text is not None:
            return json.loads(self.schema_text)
        schema = derive_schema(self.example(), self.optional)
        if self.builtin:
            # The plugin's amounts (`payment_total_raw`, ...) are 0 in its mock, floats in life.
            for key, prop in schema["properties"].items():
                if key.endswith("_raw") and prop.get("type") == "integer":
                    prop["type"] = "number"
        return schema

    def to_json(self, with_schema: bool = False) -> dict[str, Any]:
        """The event as `GET /api/events` shows it (with its schema on request)."""
        out = {
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "payload": self.example(),
            "builtin": self.builtin,
        }
        if with_schema:
            out["schema"] = self.schema
        return out


DEFAULT_EVENTS: tuple[Event, ...] = (
    Event(
        "payment_received",
        "Payment Received",
        "A customer's payment came in, whatever state it ended up in (pending, completed, ...).",
        lambda: _merge(_payment(), _membership(), _customer()),
    ),
    Event(
        "site_published",
        "Site Published",
        "A site belonging to a membership was created, or went from pending to live.",
        lambda: _merge(_site(), _customer(), _membership()),
    ),
    Event(
        "confirm_email_address",
        "Email Verification Needed",
        "A new customer was added whose email address still has to be confirmed.",
        lambda: _merge({"verification_link": "https://linktoverifyemail.com"}, _customer()),
    ),
    Event(
        "domain_created",
        "New Domain Mapping Added",
        "A customer mapped a custom domain to one of their sites.",
        lambda: _merge(_domain(), _site(), _membership(), _customer()),
    ),
    Event(
        "renewal_payment_created",
        "New Renewal Payment Created",
        "A payment for the next period of a membership was created and awaits payment.",
        lambda: _merge(
            {"default_payment_url": "https://linktopayment.com"},
            _payment(),
            _membership(),
            _customer(),
        ),
    ),
    Event(
        "invoice_sent",
        "Invoice Sent",
        "A network admin sent an invoice to a customer by email.",
        lambda: _merge(
            {
                "payment_url": "https://linktopayment.com",
                "invoice_message": "Example message to the customer.",
            },
            _payment(),
            _customer(),
        ),
    ),
    Event(
        "payment_failed",
        "Recurring Payment Failed",
        "An automatic renewal charge for a membership did not go through.",
        lambda: _merge(_membership(), _customer(), {"payment_gateway": "stripe"}),
    ),
    Event(
        "membership_expired",
        "Membership Expired",
        "A membership reached its end date without being renewed.",
        lambda: _merge(_membership(), _customer()),
    ),
    # The plugin's model events: fired when a customer, payment or membership is saved.
    Event(
        "customer_created",
        "Customer Created",
        "A new customer record was saved, with its billing details.",
        lambda: _merge(_customer(), _billing()),
        BILLING_KEYS,
    ),
    Event(
        "customer_updated",
        "Customer Updated",
        "An existing customer record was changed and saved again.",
        lambda: _merge(_customer(), _billing()),
        BILLING_KEYS,
    ),
    Event(
        "payment_created",
        "Payment Created",
        "A payment record was saved for the first time, with its membership and customer.",
        lambda: _merge(_payment(), _membership(), _customer(), _billing()),
        BILLING_KEYS,
    ),
    Event(
        "payment_updated",
        "Payment Updated",
        "A payment record changed, for instance its status or amounts.",
        lambda: _merge(_payment(), _membership(), _customer(), _billing()),
        BILLING_KEYS,
    ),
    Event(
        "membership_created",
        "Membership Created",
        "A membership record was saved for the first time, with its customer.",
        lambda: _merge(_membership(), _customer(), _billing()),
        BILLING_KEYS,
    ),
    Event(
        "membership_updated",
        "Membership Updated",
        "A membership record changed, for instance its status, amount or expiry date.",
        lambda: _merge(_membership(), _customer(), _billing()),
        BILLING_KEYS,
    ),
)


class Catalog:
    """The events webhooks can subscribe to: the built-in ones in display order, then user events.

    Built-in events are held here; user events are read from the store on each use, so an
    event added by another process (or before a restart) is there at once.
    """

    def __init__(self, events: list[Event] | tuple[Event, ...], store: Store | None = None) -> None:
        self._events: dict[str, Event] = {}
        for event in events:
            self._events[event.slug] = event
        self.store = store
        self._checkers: OrderedDict[tuple[str, int], Checker] = OrderedDict()
        self._checkers_lock = threading.Lock()

    def __iter__(self) -> Iterator[Event]:
        yield from self._events.values()
        if self.store is not None:
            for found in user_events.list_rows(self.store.conn):
                yield user_event(found)

    def __len__(self) -> int:
        if self.store is None:
            return len(self._events)
        return len(self._events) + user_events.count_rows(self.store.conn)

    def __contains__(self, slug: object) -> bool:
        return isinstance(slug, str) and self.get(slug) is not None

    def builtins(self) -> list[Event]:
        """The built-in events (defaults and the catalog file's), in display order."""
        return list(self._events.values())

    def group(self, prefix: str, offset: int = 0, limit: int = -1) -> list[Event]:
        """The user events of one prefix ("github."), by slug; "" is those without a prefix."""
        if self.store is None:
            return []
        found = user_events.list_rows(self.store.conn, prefix, offset, limit)
        return [user_event(r) for r in found]

    def choices(self) -> list[dict[str, str]]:
        """Slug, name and group of every event: built-in ones first (group None), then by prefix."""
        out = [{"slug": e.slug, "name": e.name, "group": None} for e in self._events.values()]
        if self.store is not None:
            for found in user_events.choice_rows(self.store.conn):
                out.append({"slug": found["slug"], "name": found["name"], "group": found["prefix"]})
        return out

    def group_size(self, prefix: str) -> int:
        """How many user events one prefix holds."""
        return user_events.count_prefix(self.store.conn, prefix) if self.store is not None else 0

    def groups(self) -> list[tuple[str, int]]:
        """Each prefix of the user events with its number of events."""
        return user_events.prefix_counts(self.store.conn) if self.store is not None else []

    def is_builtin(self, slug: str) -> bool:
        """Whether `slug` is a built-in event's (read-only, and not available to user events)."""
        return slug in self._events

    def get(self, slug: str) -> Event | None:
        """The event with this slug, or None."""
        found = self._events.get(slug)
        if found is None and self.store is not None:
            stored = user_events.read_row(self.store.conn, slug)
            found = user_event(stored) if stored else None
        return found

    def require(self, slug: str) -> Event:
        """The event with this slug, or a 404."""
        event = self.get(slug)
        if event is None:
            raise ApiError(404, "event_not_found", f"No event {slug!r} in the catalog.")
        return event

    def display_name(self, slug: str) -> str:
        """What a person reads for a webhook's event: the display name, or "All events"."""
        if slug == WILDCARD:
            return "All events"
        event = self.get(slug)
        return event.name if event else slug

    def check(self, event: Event, payload: Any) -> dict[str, Any]:
        """Check `payload` against the event's schema: `{"valid", "problems", "warnings"?}`."""
        try:
            return self._checker(event).check(payload)
        except RecursionError:
            raise ApiError(
                400, "bad_request", "The payload is nested too deeply to check."
            ) from None

    def _checker(self, event: Event) -> Checker:
        # Compiling a schema costs more than checking a payload: keep the recent ones.
        key = (event.slug, event.version)
        with self._checkers_lock:
            found = self._checkers.get(key)
            if found is not None:
                self._checkers.move_to_end(key)
                return found
        found = Checker.for_schema(event.schema)
        with self._checkers_lock:
            self._checkers[key] = found
            while len(self._checkers) > MAX_CHECKERS:
                self._checkers.popitem(last=False)
        return found


def user_event(stored: dict[str, Any]) -> Event:
    """A user event from its row of the store."""
    payload_text = stored["payload"]
    schema_text = stored["schema"]
    return Event(
        stored["slug"],
        stored["name"],
        stored["description"],
        lambda: json.loads(payload_text),
        schema_text=schema_text,
        builtin=False,
        version=hash(schema_text if schema_text is not None else payload_text),
    )


def _static_payload(payload: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: copy.deepcopy(payload)


def load_catalog_file(path: str | Path) -> list[Event]:
    """Read a catalog file: a JSON list of events (or `{"events": [...]}`); raises CatalogError."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{name}: cannot read the catalog file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CatalogError(f"{name}: the catalog file is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if isinstance(data, dict) and set(data) == {"events"}:
        data = data["events"]
    if not isinstance(data, list):
        raise CatalogError(
            f'{name}: a catalog file is a JSON list of events (or {{"events": [...]}}), '
            "each with slug, name, description and payload"
        )
    events: list[Event] = []
    seen: set[str] = set()
    for index, item in enumerate(data, start=1):
        events.append(_check_event(name, index, item, seen))
    return events


def _check_event(file: str, index: int, item: Any, seen: set[str]) -> Event:
    where = f"{file}: event {index}"
    if not isinstance(item, dict):
        raise CatalogError(f"{where}: an event is an object with slug, name, description, payload")
    slug = item.get("slug")
    if isinstance(slug, str) and slug:
        where = f"{file}: event {index} ({slug!r})"
    unknown = sorted(set(item) - {"slug", "name", "description", "payload"})
    if unknown:
        raise CatalogError(f"{where}: unknown field {unknown[0]!r}")
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise CatalogError(
            f"{where}: field 'slug' must be 1-100 characters of a-z, 0-9, '_', '.', '-' "
            "starting with a letter or digit"
        )
    if slug in seen:
        raise CatalogError(f"{where}: field 'slug' repeats an earlier event of the file")
    seen.add(slug)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(f"{where}: field 'name' must be a non-empty string")
    description = item.get("description", "")
    if not isinstance(description, str):
        raise CatalogError(f"{where}: field 'description' must be a string")
    if "payload" not in item:
        raise CatalogError(f"{where}: field 'payload' is missing (the example payload)")
    payload = item["payload"]
    if not isinstance(payload, dict):
        raise CatalogError(f"{where}: field 'payload' must be a JSON object")
    return Event(slug, name.strip(), description.strip(), _static_payload(payload))


def build_catalog(path: str | Path | None = None, store: Store | None = None) -> Catalog:
    """The default events, then those of the catalog file (same slug: the file's wins).

    With a `store`, the catalog also holds the user events kept there.
    """
    events = list(DEFAULT_EVENTS)
    if path:
        extra = load_catalog_file(path)
        replaced = {e.slug for e in extra}
        events = [e for e in events if e.slug not in replaced] + extra
    return Catalog(events, store)


DEFAULT_CATALOG = Catalog(DEFAULT_EVENTS)


def get_catalog(app: Flask | None = None) -> Catalog:
    """The event catalog of `app` (default: the current app)."""
    return (app or current_app).extensions["hooklab.catalog"]
