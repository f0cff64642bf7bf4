"""Event schemas and payload checks: built-in schemas, the check routes, user events, firing."""

from __future__ import annotations

import pytest

from hooklab.app.factory import create_app
from hooklab.sender.catalog import BILLING_KEYS, DEFAULT_CATALOG
from hooklab.sender.schemas import DIALECT, derive_schema
from tests.conftest import make_settings
from tests.test_bin_api import capture, make_bin

PET = {
    "slug": "shop.order_paid",
    "name": "Order Paid",
    "description": "An order of the shop was paid.",
    "payload": {"order_id": 42, "total": 9.5, "customer": {"email": "a@b.c"}, "note": None},
}


def check(client, slug: str, payload) -> dict:
    response = client.post(f"/api/events/{slug}/check", json=payload)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def add_event(client, **fields) -> dict:
    response = client.post("/api/events", json={**PET, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("event", list(DEFAULT_CATALOG), ids=lambda e: e.slug)
def test_every_built_in_example_matches_its_own_schema(event):
    assert event.schema["$schema"] == DIALECT
    assert DEFAULT_CATALOG.check(event, event.example()) == {"valid": True, "problems": []}


@pytest.mark.parametrize("slug", ["customer_created", "payment_updated", "membership_created"])
def test_model_events_leave_billing_fields_optional_as_live_events_do(slug):
    event = DEFAULT_CATALOG.get(slug)
    assert BILLING_KEYS <= set(event.schema["properties"])
    assert not BILLING_KEYS & set(event.schema["required"])
    payload = {k: v for k, v in event.example().items() if k not in BILLING_KEYS}
    assert DEFAULT_CATALOG.check(event, payload)["valid"]


def test_a_missing_key_a_wrong_type_and_an_extra_key(client):
    payload = DEFAULT_CATALOG.get("payment_received").example()
    del payload["customer_name"]
    payload["payment_id"] = "seven"
    payload["coupon"] = "SAVE10"
    result = check(client, "payment_received", payload)
    assert result["valid"] is False
    assert result["problems"] == [
        {"path": "/customer_name", "message": "required key is missing"},
        {"path": "/payment_id", "message": "expected integer, got string"},
    ]
    assert result["warnings"] == [
        {"path": "/coupon", "message": "unexpected key (the schema does not name it)"}
    ]
    assert result["event"] == {"slug": "payment_received", "name": "Payment Received"}


def test_an_extra_key_alone_is_a_warning_not_a_problem(client):
    payload = {**DEFAULT_CATALOG.get("membership_expired").example(), "new_key": 1}
    result = check(client, "membership_expired", payload)
    assert result["valid"] is True and result["problems"] == []
    assert [w["path"] for w in result["warnings"]] == ["/new_key"]


def test_a_null_example_accepts_any_type_and_amounts_accept_decimals(client):
    payload = DEFAULT_CATALOG.get("domain_created").example()
    payload["site_id"] = 12
    payload["domain_date_created"] = "2026-01-01 10:00:00"
    payload["membership_amount_raw"] = 19.99
    assert check(client, "domain_created", payload)["valid"] is True


def test_nested_problems_have_json_pointer_paths():
    schema = derive_schema({"customer": {"email": "a@b.c", "tags": ["x"]}, "a/b": 1})
    from hooklab.sender.schemas import Checker

    result = Checker.for_schema(schema).check({"customer": {"tags": [3]}, "a/b": "1"})
    assert result["problems"] == [
        {"path": "/a~1b", "message": "expected integer, got string"},
        {"path": "/customer/email", "message": "required key is missing"},
        {"path": "/customer/tags/0", "message": "expected string, got integer"},
    ]


def test_the_schema_route(client):
    response = client.get("/api/events/payment_received/schema")
    assert response.status_code == 200
    assert response.mimetype == "application/schema+json"
    schema = response.get_json()
    assert schema["type"] == "object" and "payment_total" in schema["required"]
    event = client.get("/api/events/payment_received").get_json()
    assert event["schema"] == schema and event["builtin"] is True


@pytest.mark.parametrize(
    "method, path, kwargs, status, code",
    [
        ("get", "/api/events/nope/schema", {}, 404, "event_not_found"),
        ("post", "/api/events/nope/check", {"json": {}}, 404, "event_not_found"),
        (
            "post",
            "/api/events/payment_received/check",
            {"data": "{", "content_type": "application/json"},
            400,
            "invalid_json",
        ),
        (
            "post",
            "/api/events/payment_received/check",
            {"data": "", "content_type": "application/json"},
            400,
            "invalid_json",
        ),
    ],
)
def test_check_errors_are_clear(client, method, path, kwargs, status, code):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_a_payload_that_is_not_an_object_is_a_problem_at_the_root(client):
    result = check(client, "payment_received", [1, 2])
    assert result["problems"] == [{"path": "", "message": "expected object, got array"}]


# -- user events --------------------------------------------------------------------------------


def test_add_a_user_event_then_read_check_fire_change_and_delete_it(client):
    created = add_event(client)
    assert created["builtin"] is False and created["payload"] == PET["payload"]
    assert created["schema"]["required"] == ["order_id", "total", "customer", "note"]
    assert any(e["slug"] == PET["slug"] for e in client.get("/api/events").get_json())
    assert check(client, PET["slug"], {**PET["payload"], "note": ["anything"]})["valid"]

    changed = client.patch(f"/api/events/{PET['slug']}", json={"name": "Order Settled"})
    assert changed.status_code == 200 and changed.get_json()["name"] == "Order Settled"
    assert client.delete(f"/api/events/{PET['slug']}").status_code == 204
    assert client.get(f"/api/events/{PET['slug']}").status_code == 404


def test_a_written_schema_is_kept_and_used(client):
    schema = {
        "type": "object",
        "required": ["order_id"],
        "properties": {"order_id": {"type": "integer"}},
    }
    add_event(client, schema=schema)
    assert client.get(f"/api/events/{PET['slug']}/schema").get_json() == schema
    result = check(client, PET["slug"], {"order_id": "x"})
    assert result["problems"] == [{"path": "/order_id", "message": "expected integer, got string"}]


@pytest.mark.parametrize(
    "fields, field, words",
    [
        ({"slug": "payment_received"}, "slug", "built-in"),
        ({"slug": "bad slug"}, "slug", "a slug is"),
        ({"slug": "import"}, "slug", "reserved"),
        ({"name": ""}, "name", "non-empty"),
        ({"payload": [1]}, "payload", "JSON object"),
        ({"schema": {"type": "integr"}}, "schema", "not valid JSON Schema"),
        ({"schema": {"type": "object", "required": ["x"]}}, "payload", "does not match the schema"),
        ({"colour": "red"}, "colour", "Unknown field"),
    ],
)
def test_bad_user_events_are_refused_naming_the_field(client, fields, field, words):
    response = client.post("/api/events", json={**PET, **fields})
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["field"] == field and words in error["message"]
    assert client.get(f"/api/events/{PET['slug']}").status_code == 404


def test_adding_a_slug_twice_is_a_conflict(client):
    add_event(client)
    response = client.post("/api/events", json=PET)
    assert response.status_code == 409 and response.get_json()["error"]["field"] == "slug"


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_built_in_events_are_read_only(client, method):
    response = getattr(client, method)("/api/events/payment_received", json={"name": "Mine"})
    assert response.status_code == 403
    assert "read-only" in response.get_json()["error"]["message"]


def test_user_events_survive_a_restart_and_every_app_on_the_store_sees_them(tmp_path):
    first = create_app(make_settings(tmp_path)).test_client()
    second = create_app(make_settings(tmp_path)).test_client()
    add_event(first)
    assert second.get(f"/api/events/{PET['slug']}").status_code == 200
    again = create_app(make_settings(tmp_path)).test_client()
    assert again.get(f"/api/events/{PET['slug']}").get_json()["name"] == "Order Paid"


def test_firing_a_user_event_checks_its_payload_first(client):
    add_event(client)
    hook = client.post(
        "/api/webhooks", json={"name": "Shop", "url": "http://127.0.0.1:9/x", "event": PET["slug"]}
    ).get_json()
    bad = client.post(f"/api/events/{PET['slug']}", json={"order_id": "42"})
    assert bad.status_code == 422
    body = bad.get_json()
    assert body["error"]["code"] == "payload_invalid" and "--no-check" in body["error"]["message"]
    assert {"path": "/order_id", "message": "expected integer, got string"} in body["problems"]
    assert client.get(f"/api/webhooks/{hook['id']}/deliveries").get_json() == []

    sent = client.post(f"/api/events/{PET['slug']}?check=0", json={"order_id": "42"})
    assert sent.status_code == 202 and len(sent.get_json()["deliveries"]) == 1
    example = client.post(f"/api/events/{PET['slug']}")
    assert example.status_code == 202
    delivery = client.get(f"/api/deliveries/{example.get_json()['deliveries'][0]['id']}")
    assert delivery.get_json()["payload"] == PET["payload"]
    assert client.post(f"/api/events/{PET['slug']}?check=maybe", json={}).status_code == 400


def test_built_in_events_fire_any_payload_as_the_plugin_does(client):
    response = client.post("/api/events/payment_received", json={"amount": 4200})
    assert response.status_code == 202


# -- checking a captured request ---------------------------------------------------------------


def test_a_captured_request_is_checked_against_the_event_it_names(client):
    bin_id = make_bin(client)["id"]
    payload = DEFAULT_CATALOG.get("payment_received").example()
    good = capture(client, bin_id, json=payload, headers={"X-Hooklab-Event": "payment_received"})
    result = client.get(f"/api/bins/{bin_id}/requests/{good}/check").get_json()
    assert result["valid"] is True and result["event"]["name"] == "Payment Received"

    del payload["payment_total"]
    payload["customer_id"] = None
    bad = capture(client, bin_id, json=payload, headers={"X-Hooklab-Event": "payment_received"})
    result = client.get(f"/api/bins/{bin_id}/requests/{bad}/check").get_json()
    assert [p["path"] for p in result["problems"]] == ["/payment_total", "/customer_id"]
    other = client.get(f"/api/bins/{bin_id}/requests/{good}/check?event=site_published")
    assert other.get_json()["valid"] is False


def test_an_envelope_is_checked_on_its_data(client):
    bin_id = make_bin(client)["id"]
    data = DEFAULT_CATALOG.get("membership_expired").example()
    envelope = {"type": "membership_expired", "timestamp": "2026-01-01T00:00:00.000Z", "data": data}
    rid = capture(client, bin_id, json=envelope, headers={"X-Hooklab-Event": "membership_expired"})
    result = client.get(f"/api/bins/{bin_id}/requests/{rid}/check").get_json()
    assert result["valid"] is True and result["envelope"] is True


@pytest.mark.parametrize(
    "kwargs, query, status, code",
    [
        ({"json": {"a": 1}}, "", 400, "no_event"),
        (
            {"data": b"\xff\x00", "headers": {"X-Hooklab-Event": "invoice_sent"}},
            "",
            400,
            "not_json",
        ),
        ({"data": b"a=1"}, "?event=invoice_sent", 400, "not_json"),
        ({"json": {"a": 1}}, "?event=nope", 404, "event_not_found"),
    ],
)
def test_checking_a_request_that_cannot_be_checked_says_why(client, kwargs, query, status, code):
    bin_id = make_bin(client)["id"]
    rid = capture(client, bin_id, **kwargs)
    response = client.get(f"/api/bins/{bin_id}/requests/{rid}/check{query}")
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_checking_a_request_of_another_bin_is_a_404(client):
    first, second = make_bin(client)["id"], make_bin(client)["id"]
    rid = capture(client, first, json={}, headers={"X-Hooklab-Event": "invoice_sent"})
    assert client.get(f"/api/bins/{second}/requests/{rid}/check").status_code == 404
