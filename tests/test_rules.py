"""Response rules: checking, selection from the seeded sequence, counts, reset (in process)."""

from __future__ import annotations

import pytest

from hooklab.app.factory import open_store
from hooklab.bin_server.rules import RuleStates, compile_rules, draw, validate_rules
from hooklab.shared.errors import ApiError


def bin_row(rules: list[dict], seed: int = 7, version: int = 0, state: str | None = None) -> dict:
    import json

    return {
        "id": "a" * 26,
        "rules": json.dumps(rules),
        "rules_seed": seed,
        "rules_version": version,
        "rules_state": state,
    }


def answers(rules: list[dict], n: int, seed: int = 7, method="POST", subpath="") -> list:
    """The index of the rule that answers each of n requests (None: the default)."""
    row = bin_row(rules, seed)
    compiled = compile_rules(row["rules"])
    states = RuleStates()
    return [
        (c.rule.index if c.rule else None)
        for c in (states.choose(row, compiled, method, subpath) for _ in range(n))
    ]


def test_the_sequence_is_fixed_by_its_seed():
    assert [draw(1, n) for n in range(5)] == [draw(1, n) for n in range(5)]
    assert [draw(1, n) for n in range(5)] != [draw(2, n) for n in range(5)]
    values = [draw(42, n) for n in range(10_000)]
    assert all(0 <= v < 1 for v in values)
    assert 0.45 < sum(values) / len(values) < 0.55  # spread over [0, 1), not stuck


def test_first_n_then_the_default():
    assert answers([{"times": 3, "status": 503}], 5) == [0, 0, 0, None, None]


def test_percent_is_repeatable_with_the_same_seed_and_near_its_share():
    rules = [{"percent": 30, "status": 500}]
    first = answers(rules, 1000, seed=11)
    assert first == answers(rules, 1000, seed=11)
    assert first != answers(rules, 1000, seed=12)
    assert 240 <= first.count(0) <= 360


def test_a_lost_draw_does_not_count_towards_times():
    rules = [{"percent": 50, "times": 2, "status": 500}]
    got = answers(rules, 50, seed=3)
    assert got.count(0) == 2
    # Both answers came from draws: the first request lost or won by the sequence alone.
    expected = [0 if draw(3, n) * 100 < 50 else None for n in range(50)]
    wins = [i for i, v in enumerate(expected) if v == 0][:2]
    assert [i for i, v in enumerate(got) if v == 0] == wins


def test_a_spent_rule_lets_the_next_one_answer():
    rules = [{"times": 1, "status": 503}, {"times": 2, "status": 429}]
    assert answers(rules, 4) == [0, 1, 1, None]


def test_match_by_method_and_path_glob():
    rules = [{"match": {"method": "put", "path": "/orders/*"}, "status": 409}]
    assert answers(rules, 1, method="PUT", subpath="/orders/7") == [0]
    assert answers(rules, 1, method="POST", subpath="/orders/7") == [None]
    assert answers(rules, 1, method="PUT", subpath="/users/7") == [None]
    assert answers([{"match": {"path": "/"}, "status": 204}], 1, subpath="") == [0]
    # Percent-encoding is matched as sent and decoded.
    encoded = [{"match": {"path": "/a b"}, "status": 204}]
    assert answers(encoded, 1, subpath="/a%20b") == [0]


def test_a_drawn_delay_stays_in_its_range_and_repeats():
    rules = [{"delay_ms": 1000, "delay_ms_max": 5000}]
    row = bin_row(rules, seed=5)
    compiled = compile_rules(row["rules"])
    delays = [RuleStates().choose(row, compiled, "GET", "").delay_ms for _ in range(1)]
    states = RuleStates()
    run = [states.choose(row, compiled, "GET", "").delay_ms for _ in range(200)]
    again = RuleStates()
    assert run == [again.choose(row, compiled, "GET", "").delay_ms for _ in range(200)]
    assert delays == run[:1]
    assert all(1000 <= d <= 5000 for d in run)
    assert len(set(run)) > 50


def test_the_state_carries_on_from_its_snapshot():
    rules = [{"percent": 40, "status": 500}, {"times": 5, "status": 503}]
    row = bin_row(rules, seed=9)
    compiled = compile_rules(row["rules"])
    whole = RuleStates()
    straight = [whole.choose(row, compiled, "GET", "") for _ in range(12)]
    first = RuleStates()
    part = [first.choose(row, compiled, "GET", "") for _ in range(6)]
    # A restart: a new process loads the state the sixth capture wrote.
    resumed = RuleStates()
    restarted = bin_row(rules, seed=9, state=part[-1].snapshot.state_json)
    rest = [resumed.choose(restarted, compiled, "GET", "") for _ in range(6)]

    def idx(choices):
        return [c.rule.index if c.rule else None for c in choices]

    assert idx(part + rest) == idx(straight)


def test_a_newer_version_replaces_the_state_in_memory():
    rules = [{"times": 1, "status": 503}]
    states = RuleStates()
    compiled = compile_rules(bin_row(rules)["rules"])
    assert states.choose(bin_row(rules), compiled, "GET", "").rule is not None
    assert states.choose(bin_row(rules), compiled, "GET", "").rule is None
    # A stale cached row (older version) does not bring back the old state...
    assert states.choose(bin_row(rules, version=0), compiled, "GET", "").rule is None
    # ...a reset (newer version, no state) starts the counts again.
    assert states.choose(bin_row(rules, version=1), compiled, "GET", "").rule is not None


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ("no", "rules"),
        ([{"status": 200}, {"colour": "red"}], "rules[1].colour"),
        ([{}, {}, {"percent": 101}], "rules[2].percent"),
        ([{"percent": -1}], "rules[0].percent"),
        ([{"percent": "30"}], "rules[0].percent"),
        ([{"percent": float("nan")}], "rules[0].percent"),
        ([{"status": 99}], "rules[0].status"),
        ([{"status": 600}], "rules[0].status"),
        ([{"status": True}], "rules[0].status"),
        ([{"delay_ms": 30001}], "rules[0].delay_ms"),
        ([{"delay_ms": 10, "delay_ms_max": 5}], "rules[0].delay_ms_max"),
        ([{"delay_ms_max": 30001}], "rules[0].delay_ms_max"),
        ([{"times": 0}], "rules[0].times"),
        ([{"drop": "yes"}], "rules[0].drop"),
        ([{"headers": {"Content-Length": "1"}}], "rules[0].headers"),
        ([{"headers": {"X": "a\r\nb"}}], "rules[0].headers"),
        ([{"match": {"verb": "GET"}}], "rules[0].match.verb"),
        ([{"match": {"method": "GE T"}}], "rules[0].match.method"),
        ([{"body": 5}], "rules[0].body"),
        ([{}] * 51, "rules"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(rules, field):
    with pytest.raises(ApiError) as caught:
        validate_rules(rules, 30000)
    assert caught.value.status == 422
    assert caught.value.field == field


# -- through the API (Flask test client) ----------------------------------------------------


def test_rules_round_trip_and_a_bad_one_saves_nothing(client):
    rules = [{"name": "fail", "times": 3, "status": 503}, {"percent": 30, "status": 500}]
    created = client.post("/api/bins", json={"rules": rules, "rules_seed": 4})
    assert created.status_code == 201
    body = created.get_json()
    assert body["rules"] == rules
    assert body["rules_seed"] == 4
    assert body["rule_counts"] == [0, 0]
    assert body["forward"] is None
    bin_id = body["id"]

    refused = client.patch(
        f"/api/bins/{bin_id}",
        json={"name": "changed", "rules": [{"status": 200}, {}, {"percent": 250}]},
    )
    assert refused.status_code == 422
    assert refused.get_json()["error"]["field"] == "rules[2].percent"
    after = client.get(f"/api/bins/{bin_id}").get_json()
    assert after["name"] == "" and after["rules"] == rules

    bad_seed = client.patch(f"/api/bins/{bin_id}", json={"rules_seed": -1})
    assert bad_seed.get_json()["error"]["field"] == "rules_seed"


def test_counts_answered_by_and_reset(client, app):
    created = client.post(
        "/api/bins", json={"rules": [{"name": "fail", "times": 2, "status": 503}]}
    ).get_json()
    url = f"/b/{created['id']}/hook"
    statuses = [client.post(url, data=b"x").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    shown = client.get(f"/api/bins/{created['id']}").get_json()
    assert shown["rule_counts"] == [2]

    listed = client.get(f"/api/bins/{created['id']}/requests").get_json()
    assert [r["answered_by"] for r in reversed(listed)] == [
        {"rule": 0, "name": "fail", "status": 503},
        {"rule": 0, "name": "fail", "status": 503},
        {"rule": None, "name": "default", "status": 200},
    ]

    reset = client.post(f"/api/bins/{created['id']}/rules/reset")
    assert reset.status_code == 200
    assert reset.get_json()["rule_counts"] == [0]
    assert client.post(url).status_code == 503
    # The count is in the store, written with the capture.
    store = open_store(app.config["HOOKLAB"].db)
    state = store.conn.execute(
        "SELECT rules_state FROM bins WHERE id = ?", (created["id"],)
    ).fetchone()[0]
    assert '"counts": [1]' in state


def test_a_rule_without_status_headers_or_body_takes_the_default(client):
    created = client.post(
        "/api/bins",
        json={
            "response": {"status": 202, "headers": {"X-Default": "yes"}, "body": "dflt"},
            "rules": [{"match": {"path": "/a"}, "headers": {"X-Rule": "1"}}, {"body": ""}],
        },
    ).get_json()
    first = client.post(f"/b/{created['id']}/a")
    assert first.status_code == 202
    assert first.headers["X-Rule"] == "1" and "X-Default" not in first.headers
    assert first.data == b"dflt"
    second = client.post(f"/b/{created['id']}/b")
    assert second.status_code == 202 and second.data == b""
    assert second.headers["X-Default"] == "yes"


def test_reset_of_an_unknown_bin_is_404(client):
    assert client.post("/api/bins/" + "a" * 26 + "/rules/reset").status_code == 404
