"""A user event's schema never makes the server fetch anything, and no schema gives a 500.

Only references within the schema (`#...`) resolve: a `$ref` or `$dynamicRef` to a URL or a
file is refused when the event is saved, and validators resolve through a registry that fetches
nothing, so a schema stored before those checks cannot fetch either. A listener on 127.0.0.1
records every request: a schema naming it must never reach it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from referencing.exceptions import Unresolvable

from hooklab.sender import user_events
from hooklab.sender.schemas import (
    Checker,
    check_schema,
    compile_validator,
    example_from_schema,
    strict_variant,
)
from tests.app_receiver import AppReceiver

PAYLOAD = {"a": "text"}
EVENT = {"slug": "t.refs", "name": "Refs", "description": "x", "payload": PAYLOAD}
# Schemas that gave a 500 on POST /api/events (re.error, Unresolvable, RecursionError) and
# others of the same kinds.
UNUSABLE = {
    "bad pattern": {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}},
    "bad patternProperties name": {"type": "object", "patternProperties": {"[": {}}},
    "bad pattern in propertyNames": {"propertyNames": {"pattern": "(?P<x"}},
    "ref to nowhere": {"$ref": "#/nope"},
    "ref to a missing anchor": {"$ref": "#nobody"},
    "ref to something that is not a schema": {"required": ["a"], "$ref": "#/required"},
    "ref loop": {"$defs": {"x": {"$ref": "#/$defs/x"}}, "$ref": "#/$defs/x"},
    "ref loop through allOf": {
        "$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"not": {"$ref": "#/$defs/a"}}},
        "$ref": "#/$defs/a",
    },
    "root refers to itself": {"anyOf": [{"type": "integer"}, {"$ref": "#"}]},
}


@pytest.fixture
def listener() -> Iterator[AppReceiver]:
    """A server on 127.0.0.1 that records every request it gets (`seen`) and answers a schema."""
    found = AppReceiver(headers=[("Content-Type", "application/json")], body=b'{"type": "object"}')
    try:
        yield found
    finally:
        found.stop()


def remote_schemas(url: str) -> dict[str, dict]:
    """Schemas whose references lead out of the document, to the listener at `url`."""
    return {
        "$ref to a URL": {"$ref": f"{url}/x.json"},
        "$ref to a URL, nested": {
            "type": "object",
            "properties": {"a": {"$ref": f"{url}/a.json#/$defs/b"}},
        },
        "$dynamicRef to a URL": {"$dynamicRef": f"{url}/d.json"},
        "relative $ref against an $id": {"$id": f"{url}/base/", "$ref": "x.json"},
        "relative $ref against a nested $id": {
            "properties": {"a": {"$id": f"{url}/sub/", "$ref": "other.json"}}
        },
    }


def add(client, schema, payload=PAYLOAD):
    return client.post("/api/events", json={**EVENT, "payload": payload, "schema": schema})


def assert_refused_naming_schema(response, words: str) -> None:
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid" and error["field"] == "schema", error
    assert error["message"].startswith("schema ") and words in error["message"], error


def store_as_before_the_fix(app, slug: str, schema) -> None:
    """Save a user event without any check, as one saved by an older version is."""
    event = {**EVENT, "slug": slug, "payload": json.dumps(PAYLOAD), "schema": json.dumps(schema)}
    user_events.save_events(app.extensions["hooklab.store"], [event], source="api")


# -- refused when saved ------------------------------------------------------------------------


def test_every_remote_reference_is_refused_and_nothing_is_fetched(client, listener):
    for name, schema in remote_schemas(listener.url).items():
        message = add(client, schema).get_json()["error"]["message"]
        assert_refused_naming_schema(add(client, schema), "is not local")
        assert message.endswith("only references within the document (#/...) can be resolved."), (
            name
        )
        assert client.get(f"/api/events/{EVENT['slug']}").status_code == 404
    assert listener.seen == []


def test_changing_a_schema_to_a_remote_one_is_refused_too(client, listener):
    assert add(client, {"type": "object"}).status_code == 201
    response = client.patch(
        f"/api/events/{EVENT['slug']}", json={"schema": {"$ref": f"{listener.url}/x.json"}}
    )
    assert_refused_naming_schema(response, "is not local")
    assert client.get(f"/api/events/{EVENT['slug']}/schema").get_json() == {"type": "object"}
    assert listener.seen == []


def test_a_file_ref_is_refused_alike_whether_the_file_exists_or_not(client, tmp_path):
    there = tmp_path / "there.json"
    there.write_text('{"type": "object"}')
    answers = []
    for path in (there, tmp_path / "missing.json"):
        response = add(client, {"$ref": path.as_uri()})
        assert_refused_naming_schema(response, "is not local")
        answers.append(response.get_json()["error"]["message"].replace(path.as_uri(), "FILE"))
    assert answers[0] == answers[1]  # no oracle: the file is never opened


def test_the_running_server_refuses_a_remote_ref_without_fetching_it(live_server, listener):
    body = {**EVENT, "payload": {"a": 1}, "schema": {"$ref": f"{listener.url}/x.json"}}
    response = requests.post(f"{live_server.url}/api/events", json=body, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "schema"
    assert requests.get(f"{live_server.url}/api/events/t.refs", timeout=10).status_code == 404
    assert listener.seen == []


@pytest.mark.parametrize("name", list(UNUSABLE))
def test_a_schema_that_cannot_check_payloads_is_a_422_naming_schema(client, name):
    response = add(client, UNUSABLE[name])
    assert_refused_naming_schema(response, "schema cannot be used: at /")
    assert client.get(f"/api/events/{EVENT['slug']}").status_code == 404


@pytest.mark.parametrize(
    "schema, words",
    [
        (UNUSABLE["bad pattern"], "at /properties/a/pattern: '(' is not a valid regular"),
        (UNUSABLE["ref to nowhere"], "at /$ref: $ref '#/nope' does not resolve"),
        (UNUSABLE["ref to something that is not a schema"], "does not point to a schema"),
        (UNUSABLE["ref loop"], "at /$defs/x: references lead back to this schema"),
    ],
)
def test_the_message_says_where_and_why(client, schema, words):
    assert_refused_naming_schema(add(client, schema), words)


def test_the_bad_pattern_is_refused_whatever_the_example(client):
    response = add(client, UNUSABLE["bad pattern"], payload={"a": 1})
    assert_refused_naming_schema(response, "not a valid regular expression")


def test_a_schema_nested_too_deeply_to_check_is_a_422_naming_schema(client):
    schema: dict = {"type": "object"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"a": schema}}
    assert_refused_naming_schema(add(client, schema, payload={"b": 1}), "nested too deeply")


# -- local references still work ---------------------------------------------------------------


def test_local_refs_defs_anchors_and_recursion_still_work(client):
    schema = {
        "$id": "https://example.com/order.schema.json",
        "type": "object",
        "required": ["id", "lines"],
        "properties": {
            "id": {"$ref": "#/$defs/id"},
            "lines": {"type": "array", "items": {"$ref": "#line"}},
            "tree": {"$ref": "#/$defs/node"},
        },
        "$defs": {
            "id": {"type": "integer", "minimum": 1},
            "line": {
                "$anchor": "line",
                "type": "object",
                "required": ["sku"],
                "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-\\d+$"}},
            },
            "node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            },
        },
    }
    example = {"id": 7, "lines": [{"sku": "ABC-1"}], "tree": {"children": [{"children": []}]}}
    response = add(client, schema, payload=example)
    assert response.status_code == 201, response.get_json()
    slug = EVENT["slug"]
    good = client.post(f"/api/events/{slug}/check", json=example).get_json()
    assert good == {"valid": True, "problems": [], "event": {"slug": slug, "name": "Refs"}}
    bad = {"id": 0, "lines": [{"sku": "abc"}], "tree": {"children": [{"children": 3}]}}
    result = client.post(f"/api/events/{slug}/check", json=bad).get_json()
    assert [p["path"] for p in result["problems"]] == [
        "/id",
        "/lines/0/sku",
        "/tree/children/0/children",
    ]
    assert client.post(f"/api/events/{slug}", json=bad).status_code == 422
    assert client.post(f"/api/events/{slug}", json=example).status_code == 202


# -- schemas stored before the fix ---------------------------------------------------------------


def test_a_stored_schema_that_cannot_check_payloads_answers_with_a_problem_not_a_500(
    app, client, listener
):
    stored = {**UNUSABLE, **remote_schemas(listener.url), "file": {"$ref": "file:///etc/hostname"}}
    for i, schema in enumerate(stored.values()):
        store_as_before_the_fix(app, f"old.e{i}", schema)
    assert client.get("/api/events").status_code == 200
    assert client.get("/webhooks").status_code == 200
    for i, name in enumerate(stored):
        slug = f"old.e{i}"
        assert client.get(f"/api/events/{slug}").status_code == 200, name
        assert client.get(f"/api/events/{slug}/schema").status_code == 200, name
        result = client.post(f"/api/events/{slug}/check", json=PAYLOAD)
        assert result.status_code == 200, name
        assert result.get_json()["valid"] is False, name
        [problem] = result.get_json()["problems"]
        assert problem["message"].startswith("the event's schema cannot check payloads: "), name
        fired = client.post(f"/api/events/{slug}", json=PAYLOAD)
        assert fired.status_code == 422, name
        assert fired.get_json()["error"]["code"] == "payload_invalid", name
        assert client.post(f"/api/events/{slug}?check=0", json=PAYLOAD).status_code == 202, name
        changed = client.patch(f"/api/events/{slug}", json={"payload": {"a": "other"}})
        assert_refused_naming_schema(changed, "schema cannot be used")
        fixed = client.patch(f"/api/events/{slug}", json={"schema": {"type": "object"}})
        assert fixed.status_code == 200, name
    assert listener.seen == []


def test_an_import_with_a_remote_dynamic_ref_is_refused_without_fetching(client, listener):
    schema = {"type": "object", "properties": {"a": {"$dynamicRef": f"{listener.url}/d"}}}
    media = {"application/json": {"schema": schema, "example": {"a": 1}}}
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "webhooks": {"w": {"post": {"requestBody": {"content": media}}}},
    }
    response = client.post("/api/events/import", json=document)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "import_refused" and "is not local" in error["message"]
    assert listener.seen == []


# -- the functions themselves ------------------------------------------------------------------


def test_a_validator_never_fetches_even_for_a_schema_that_skipped_the_checks(listener):
    schema = {"$ref": f"{listener.url}/x.json"}
    with pytest.raises(Unresolvable):
        list(compile_validator(schema).iter_errors(1))
    # A Checker built around the checks still reports a problem rather than fetching.
    unchecked = Checker(compile_validator(schema), compile_validator(strict_variant(schema)))
    assert unchecked.check(1)["valid"] is False
    assert Checker.for_schema(schema).check(1)["valid"] is False
    assert listener.seen == []


@pytest.mark.parametrize("name", list(UNUSABLE))
def test_example_and_strict_variant_and_checker_take_any_schema(name):
    schema = UNUSABLE[name]
    example_from_schema(schema)
    strict_variant(schema)
    result = Checker.for_schema(schema).check(PAYLOAD)
    assert result["valid"] is False
    assert result["problems"][0]["message"].startswith("the event's schema cannot check")
    with pytest.raises(ValueError, match="at /"):
        check_schema(schema)
