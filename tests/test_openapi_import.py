"""Importing an OpenAPI 3.1 document's webhooks: the API, refused documents, the CLI, firing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from hooklab.cli.main import cli
from hooklab.sender.schemas import Checker

PETSTORE = Path(__file__).parent / "data" / "petstore-webhooks.yaml"


@pytest.fixture
def document() -> dict:
    return yaml.safe_load(PETSTORE.read_text())


def do_import(client, document, query="?prefix=oai."):
    return client.post(f"/api/events/import{query}", json=document)


def user_slugs(client) -> list[str]:
    return [e["slug"] for e in client.get("/api/events").get_json() if not e["builtin"]]


def test_import_adds_each_webhook_with_a_json_body(client, document):
    result = do_import(client, document).get_json()
    assert result["added"] == ["oai.newPet", "oai.petAdopted"]
    assert result["skipped"] == [
        {"name": "storeClosed", "reason": "no JSON request body (application/json)"}
    ]
    new_pet = client.get("/api/events/oai.newPet").get_json()
    assert new_pet["name"] == "New pet"
    assert new_pet["description"] == "A pet was added to the store."
    # The first example of the document, and a self-contained schema with its $refs resolved.
    assert new_pet["payload"]["name"] == "Rex"
    assert new_pet["schema"]["$ref"] == "#/$defs/Pet"
    assert set(new_pet["schema"]["$defs"]) == {"Pet", "Person"}
    assert "#/components" not in json.dumps(new_pet["schema"])


def test_an_example_is_generated_when_the_document_has_none(client, document):
    result = do_import(client, document).get_json()
    assert result["generated_examples"] == ["oai.petAdopted"]
    adopted = client.get("/api/events/oai.petAdopted").get_json()
    assert adopted["payload"]["pet"]["id"] == 1  # the schema's minimum
    assert adopted["payload"]["adopted_at"].endswith("Z")
    assert Checker.for_schema(adopted["schema"]).check(adopted["payload"])["valid"]


def test_a_one_of_accepts_either_branch_and_checks_find_problems(client, document):
    do_import(client, document)
    pet = {"id": 3, "name": "Tom"}
    when = "2026-01-01T00:00:00Z"
    for adopter in ({"name": "Ann", "email": "a@x.y"}, {"shelter_id": 9}):
        body = {"pet": pet, "adopter": adopter, "adopted_at": when}
        assert client.post("/api/events/oai.petAdopted/check", json=body).get_json()["valid"]
    body = {"pet": {"id": "3"}, "adopter": {"city": "Oslo"}, "adopted_at": when}
    result = client.post("/api/events/oai.petAdopted/check", json=body).get_json()
    paths = [p["path"] for p in result["problems"]]
    assert paths == ["/adopter", "/pet/name", "/pet/id"]
    assert "oneOf" in result["problems"][0]["message"]


def test_a_dry_run_lists_what_would_be_added_and_changes_nothing(client, document):
    result = do_import(client, document, "?prefix=oai.&dry_run=1").get_json()
    assert result["dry_run"] is True and result["added"] == ["oai.newPet", "oai.petAdopted"]
    assert user_slugs(client) == []


def test_importing_again_updates_the_same_slugs(client, document):
    do_import(client, document)
    document["webhooks"]["newPet"]["post"]["summary"] = "A new pet"
    result = do_import(client, document).get_json()
    assert result["added"] == [] and result["updated"] == ["oai.newPet", "oai.petAdopted"]
    assert client.get("/api/events/oai.newPet").get_json()["name"] == "A new pet"
    assert user_slugs(client) == ["oai.newPet", "oai.petAdopted"]


def test_an_imported_event_fires_its_example_and_checks_a_given_payload(client, document):
    do_import(client, document)
    assert client.post("/api/events/oai.newPet").status_code == 202
    bad = client.post("/api/events/oai.newPet", json={"id": 0, "name": "Rex"})
    assert bad.status_code == 422
    assert bad.get_json()["problems"][0]["path"] == "/id"
    assert client.post("/api/events/oai.newPet?check=0", json={"id": 0}).status_code == 202


def _break(document: dict, how: str) -> dict:
    broken = copy.deepcopy(document)
    if how == "openapi 3.0":
        broken["openapi"] = "3.0.3"
    elif how == "no webhooks":
        del broken["webhooks"]
    elif how == "unresolvable ref":
        broken["components"]["schemas"]["Pet"]["properties"]["owner"]["$ref"] = (
            "#/components/schemas/Nobody"
        )
    elif how == "remote ref":
        broken["components"]["schemas"]["Pet"]["properties"]["tag"] = {"$ref": "tags.yaml#/Tag"}
    elif how == "invalid schema":
        broken["components"]["schemas"]["Shelter"]["properties"]["shelter_id"]["type"] = "int"
    elif how == "built-in slug":
        broken["webhooks"]["payment_received"] = broken["webhooks"]["newPet"]
    return broken


@pytest.mark.parametrize(
    "how, words",
    [
        ("openapi 3.0", "not OpenAPI 3.1 (openapi: '3.0.3')"),
        ("no webhooks", "has no webhooks section"),
        ("unresolvable ref", "$ref '#/components/schemas/Nobody' does not resolve"),
        ("remote ref", "is not local"),
        ("invalid schema", "'#/components/schemas/Shelter' is not valid JSON Schema"),
        ("built-in slug", "'payment_received' is a built-in event's slug"),
    ],
)
def test_a_refused_document_adds_nothing(client, document, how, words):
    query = "" if how == "built-in slug" else "?prefix=oai."
    response = do_import(client, _break(document, how), query)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "import_refused"
    assert words in error["message"], error["message"]
    assert user_slugs(client) == []


def test_a_refused_reimport_keeps_the_events_as_they_were(client, document):
    do_import(client, document)
    document["webhooks"]["newPet"]["post"]["summary"] = "Changed"
    do_import(client, _break(document, "unresolvable ref"))
    assert client.get("/api/events/oai.newPet").get_json()["name"] == "New pet"


@pytest.mark.parametrize(
    "query, data, status, field",
    [
        ("?prefix=bad%20prefix", None, 422, None),
        ("?dry_run=perhaps", None, 400, "dry_run"),
        ("", "[1, 2]", 400, None),  # not_an_object, as on every JSON route
        ("", "{not json", 400, None),
    ],
)
def test_bad_import_requests_are_clear(client, document, query, data, status, field):
    body = data if data is not None else json.dumps(document)
    response = client.post(f"/api/events/import{query}", data=body, content_type="application/json")
    assert response.status_code == status
    assert response.get_json()["error"].get("field") == field


# -- the CLI and the fixture against a real server ----------------------------------------------


@pytest.fixture
def run(live_server):
    def invoke(*args: str):
        env = {"HOOKLAB_SERVER": live_server.url, "HOOKLAB_TOKEN": None}
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def test_cli_import_dry_run_then_import_then_fire(run, tmp_path):
    dry = run("events", "import", str(PETSTORE), "--prefix", "oai.", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Would import 2 events" in dry.output and "+ oai.newPet" in dry.output
    assert "Skipped storeClosed: no JSON request body" in dry.output
    assert "Nothing was changed (dry run)." in dry.output
    assert "oai.newPet" not in run("events").output

    done = run("events", "import", str(PETSTORE), "--prefix", "oai.")
    assert done.exit_code == 0 and "Imported 2 events" in done.output
    assert "oai.newPet" in run("events").output
    assert run("fire", "oai.newPet").exit_code == 0
    refused = run("fire", "oai.newPet", "--data", '{"id": "x"}')
    assert refused.exit_code == 1
    assert "/id: expected integer, got string" in refused.output
    assert run("fire", "oai.newPet", "--data", '{"id": "x"}', "--no-check").exit_code == 0

    # The same document as JSON imports the same way (an update now).
    as_json = tmp_path / "petstore.json"
    as_json.write_text(json.dumps(yaml.safe_load(PETSTORE.read_text())))
    again = run("events", "import", str(as_json), "--prefix", "oai.")
    assert "0 new, 2 updated" in again.output


@pytest.mark.parametrize(
    "content, words",
    [
        ("openapi: 3.0.0\nwebhooks: {}\n", "Import refused: the document is not OpenAPI 3.1"),
        ("openapi: 3.1.0\ninfo: [unclosed\n", "is not valid YAML or JSON (line 3, column 1)"),
        ('{"openapi": "3.1.0",', "is not valid JSON"),
    ],
)
def test_cli_import_of_a_bad_file_is_one_line_and_exit_1(run, tmp_path, content, words):
    path = tmp_path / ("doc.json" if content.startswith("{") else "doc.yaml")
    path.write_text(content)
    result = run("events", "import", str(path))
    assert result.exit_code == 1
    assert words in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_bin_check_lists_the_problems_and_exits_1(run, live_server):
    bin = requests.post(f"{live_server.url}/api/bins", json={}, timeout=5).json()
    headers = {"X-Hooklab-Event": "customer_created"}
    requests.post(bin["url"], json={"customer_id": "7\x1b[2J"}, headers=headers, timeout=5)
    result = run("bin", "check", bin["id"], "latest")
    assert result.exit_code == 1
    assert "does not match Customer Created (customer_created)" in result.output
    assert "  /customer_id: expected integer, got string" in result.output
    assert "  /customer_name: required key is missing" in result.output
    assert "\x1b" not in result.output
    matched = run("bin", "check", bin["id"], "latest", "--event", "payment_failed")
    assert matched.exit_code == 1
    none = run("bin", "check", bin["id"], "latest", "--event", "nope")
    assert none.exit_code == 1 and "No event 'nope'" in none.output


def test_the_fixture_checks_a_captured_request(hooklab):
    bin = hooklab.create_bin()
    hooklab.add_webhook(url=bin.url, event="payment_created", payload_format="envelope")
    hooklab.fire("payment_created")
    request = bin.wait_for(method="POST")
    assert request.check() == []
    assert request.check("payment_created") == []
    problems = request.check("site_published")
    assert {"path": "/site_title", "message": "required key is missing"} in problems


def test_yaml_dates_stay_strings_and_other_scalars_keep_their_types(tmp_path):
    from hooklab.cli.events import read_document

    path = tmp_path / "doc.yaml"
    path.write_text("when: 2026-01-01\nat: 2026-01-01T10:00:00Z\nn: 3\nok: true\nq: '3'\nx: 3\n")
    assert read_document(str(path)) == {
        "when": "2026-01-01",
        "at": "2026-01-01T10:00:00Z",
        "n": 3,
        "ok": True,
        "q": "3",
        "x": 3,
    }


@pytest.mark.parametrize(
    "schema, example",
    [
        ({"type": "string", "enum": ["open", "closed"]}, "open"),
        ({"const": 3}, 3),
        ({"type": "string", "format": "email"}, "user@example.com"),
        ({"type": ["null", "integer"], "exclusiveMinimum": 4}, 5),
        ({"type": "array", "items": {"type": "boolean"}, "minItems": 2}, [False, False]),
        (
            {"allOf": [{"properties": {"a": {"type": "integer"}}}, {"properties": {"b": {}}}]},
            {"a": 0, "b": None},
        ),
        ({"oneOf": [{"type": "string", "examples": ["x"]}, {"type": "integer"}]}, "x"),
    ],
)
def test_a_generated_example_follows_its_schema(schema, example):
    from hooklab.sender.schemas import example_from_schema

    assert example_from_schema(schema) == example


def test_a_wide_and_deep_schema_gives_a_bounded_example():
    from hooklab.sender.schemas import MAX_EXAMPLE_VALUES, example_from_schema

    # Six keys a level, each the next level: 6^11 strings if nothing stopped it.
    defs = {
        f"L{i}": {
            "type": "object",
            "properties": {f"p{k}": {"$ref": f"#/$defs/L{i + 1}"} for k in range(6)},
        }
        for i in range(11)
    }
    defs["L11"] = {"type": "string"}
    example = example_from_schema({"$ref": "#/$defs/L0", "$defs": defs})
    assert json.dumps(example).count('"string"') <= MAX_EXAMPLE_VALUES
    assert example["p0"]["p0"]["p0"]  # the first branches are filled in


def test_without_a_summary_the_name_is_the_webhooks_and_the_description_stays(client, document):
    del document["webhooks"]["newPet"]["post"]["summary"]
    do_import(client, document)
    event = client.get("/api/events/oai.newPet").get_json()
    assert event["name"] == "newPet"
    assert event["description"] == "A pet was added to the store."
