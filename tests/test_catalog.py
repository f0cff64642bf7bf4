"""The event catalog: the fourteen default events, fresh reference codes, and catalog files."""

from __future__ import annotations

import json

import pytest

from hooklab.app.factory import create_app
from hooklab.sender.catalog import (
    DEFAULT_CATALOG,
    CatalogError,
    build_catalog,
    load_catalog_file,
)
from tests.conftest import make_settings

PAYMENT = {"payment_id", "payment_reference_code", "payment_total", "payment_invoice_url"}
MEMBERSHIP = {"membership_id", "membership_reference_code", "membership_description"}
CUSTOMER = {"customer_id", "customer_name", "customer_avatar", "customer_billing_address"}
SITE = {"site_id", "site_title", "site_url", "site_admin_url"}
BILLING = {
    "company_name",
    "billing_email",
    "billing_address_line_1",
    "billing_address_line_2",
    "billing_country",
    "billing_state",
    "billing_city",
    "billing_zip_code",
}
DOMAIN = {"domain_id", "domain_domain", "domain_stage", "domain_active", "domain_secure"}

EXPECTED = {
    "payment_received": ("Payment Received", PAYMENT | MEMBERSHIP | CUSTOMER),
    "site_published": ("Site Published", SITE | CUSTOMER | MEMBERSHIP),
    "confirm_email_address": ("Email Verification Needed", {"verification_link"} | CUSTOMER),
    "domain_created": ("New Domain Mapping Added", DOMAIN | SITE | MEMBERSHIP | CUSTOMER),
    "renewal_payment_created": (
        "New Renewal Payment Created",
        {"default_payment_url"} | PAYMENT | MEMBERSHIP | CUSTOMER,
    ),
    "invoice_sent": ("Invoice Sent", {"payment_url", "invoice_message"} | PAYMENT | CUSTOMER),
    "payment_failed": ("Recurring Payment Failed", MEMBERSHIP | CUSTOMER | {"payment_gateway"}),
    "membership_expired": ("Membership Expired", MEMBERSHIP | CUSTOMER),
    "customer_created": ("Customer Created", CUSTOMER | BILLING),
    "customer_updated": ("Customer Updated", CUSTOMER | BILLING),
    "payment_created": ("Payment Created", PAYMENT | MEMBERSHIP | CUSTOMER | BILLING),
    "payment_updated": ("Payment Updated", PAYMENT | MEMBERSHIP | CUSTOMER | BILLING),
    "membership_created": ("Membership Created", MEMBERSHIP | CUSTOMER | BILLING),
    "membership_updated": ("Membership Updated", MEMBERSHIP | CUSTOMER | BILLING),
}


def test_the_default_catalog_has_the_fourteen_events_in_order():
    assert [e.slug for e in DEFAULT_CATALOG] == list(EXPECTED)


@pytest.mark.parametrize("slug", list(EXPECTED))
def test_each_default_event_has_its_name_description_and_keys(slug):
    event = DEFAULT_CATALOG.get(slug)
    name, keys = EXPECTED[slug]
    assert event.name == name
    assert len(event.description) > 20
    payload = event.example()
    assert keys <= set(payload)
    assert payload["wu_version"].startswith("2.4.")


def test_model_event_examples_carry_every_billing_field():
    payload = DEFAULT_CATALOG.get("customer_created").example()
    assert payload["company_name"] == "Company Co."
    assert payload["billing_email"] == "company@co.dev"
    assert payload["billing_city"] == ""
    assert not any(k.startswith(("payment_", "membership_")) for k in payload)


def test_payloads_groups_do_not_leak_into_events_without_them():
    payload = DEFAULT_CATALOG.get("membership_expired").example()
    assert not BILLING & set(payload)
    assert not any(k.startswith(("payment_", "site_", "domain_")) for k in payload)
    failed = DEFAULT_CATALOG.get("payment_failed").example()
    assert failed["payment_gateway"] == "stripe"
    assert "payment_total" not in failed


def test_reference_values_match_the_plugin_mock_data():
    payload = DEFAULT_CATALOG.get("domain_created").example()
    # The plugin sends these three as strings, not booleans.
    assert payload["domain_active"] == payload["domain_primary"] == payload["domain_secure"]
    assert payload["domain_active"] == "true"
    assert payload["site_id"] is None
    assert payload["customer_avatar"].startswith("<img ")
    assert payload["customer_billing_address"] == "Company Co.\ncompany@co.dev"


def test_reference_codes_are_fresh_on_every_render():
    event = DEFAULT_CATALOG.get("payment_received")
    codes = {event.example()["payment_reference_code"] for _ in range(10)}
    assert len(codes) == 10
    first = event.example()
    assert first["payment_reference_code"].isalnum() and len(first["payment_reference_code"]) == 10
    assert first["payment_reference_code"] in first["payment_invoice_url"]


def write(tmp_path, data, name="catalog.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_a_catalog_file_adds_events(tmp_path):
    path = write(
        tmp_path,
        [
            {
                "slug": "order.paid",
                "name": "Order Paid",
                "description": "An order was paid.",
                "payload": {"order_id": 42},
            }
        ],
    )
    catalog = build_catalog(path)
    assert len(catalog) == len(EXPECTED) + 1
    event = catalog.get("order.paid")
    assert event.name == "Order Paid"
    assert event.example() == {"order_id": 42}
    # Each render is a copy: changing one does not change the next.
    event.example()["order_id"] = 1
    assert event.example() == {"order_id": 42}


def test_a_catalog_file_may_wrap_its_list_and_replace_a_default(tmp_path):
    path = write(
        tmp_path,
        {
            "events": [
                {"slug": "invoice_sent", "name": "Invoice Mailed", "payload": {"n": 1}},
            ]
        },
    )
    catalog = build_catalog(path)
    assert len(catalog) == len(EXPECTED)
    assert catalog.get("invoice_sent").name == "Invoice Mailed"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", ["not valid JSON", "line 1"]),
        ('{"slug": "x"}', ["a JSON list of events"]),
        ("[1]", ["event 1", "an event is an object"]),
        ('[{"name": "X", "payload": {}}]', ["event 1", "'slug'"]),
        ('[{"slug": "Bad Slug", "name": "X", "payload": {}}]', ["event 1", "'slug'"]),
        ('[{"slug": "ok", "payload": {}}]', ["event 1 ('ok')", "'name'"]),
        ('[{"slug": "ok", "name": "X"}]', ["event 1 ('ok')", "'payload'", "missing"]),
        ('[{"slug": "ok", "name": "X", "payload": [1]}]', ["event 1 ('ok')", "'payload'"]),
        ('[{"slug": "ok", "name": "X", "payload": {}, "colour": 1}]', ["'colour'"]),
        ('[{"slug": "ok", "name": "X", "description": 3, "payload": {}}]', ["'description'"]),
        (
            '[{"slug": "a", "name": "A", "payload": {}},'
            ' {"slug": "a", "name": "B", "payload": {}}]',
            ["event 2 ('a')", "'slug'", "repeats"],
        ),
    ],
)
def test_a_bad_catalog_file_is_refused_naming_file_event_and_field(tmp_path, content, words):
    path = write(tmp_path, content, name="my-events.json")
    with pytest.raises(CatalogError) as info:
        load_catalog_file(path)
    message = str(info.value)
    assert message.startswith(str(path))
    for word in words:
        assert word in message


def test_a_missing_catalog_file_is_named(tmp_path):
    with pytest.raises(CatalogError, match="missing.json: cannot read"):
        load_catalog_file(tmp_path / "missing.json")


def test_a_bad_catalog_file_stops_the_app_at_start_up(tmp_path):
    path = write(tmp_path, '[{"slug": "ok", "name": "", "payload": {}}]')
    with pytest.raises(CatalogError, match="event 1 \\('ok'\\): field 'name'"):
        create_app(make_settings(tmp_path, catalog=str(path)))


def test_the_api_lists_the_catalog_file_events(tmp_path):
    path = write(tmp_path, [{"slug": "ping", "name": "Ping", "payload": {"pong": True}}])
    client = create_app(make_settings(tmp_path, catalog=str(path))).test_client()
    events = client.get("/api/events").get_json()
    assert events[-1] == {
        "slug": "ping",
        "name": "Ping",
        "description": "",
        "payload": {"pong": True},
        "builtin": True,
    }
    assert [e["slug"] for e in events[: len(EXPECTED)]] == list(EXPECTED)


def test_the_api_renders_fresh_reference_codes(client):
    first = client.get("/api/events").get_json()[0]["payload"]["payment_reference_code"]
    second = client.get("/api/events").get_json()[0]["payload"]["payment_reference_code"]
    assert first != second


def test_hooklab_serve_refuses_a_bad_catalog_file_in_one_line(tmp_path):
    from click.testing import CliRunner

    from hooklab.cli.main import cli

    path = write(tmp_path, '[{"slug": "ok", "name": "Ok", "payload": "nope"}]', "events.json")
    result = CliRunner().invoke(
        cli, ["serve", "--catalog", str(path), "--db", str(tmp_path / "x.db")], env={}
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {path}: event 1 ('ok'): field 'payload' must be a JSON object"
    )
