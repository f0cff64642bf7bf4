"""Catalog import: a provider-sized OpenAPI 3.1 document through `hooklab events import`.

Generates a document of thousands of schemas and webhooks (tens of MB; descriptions, nested
objects, `$ref`s to shared and to per-webhook schemas, `oneOf`s, examples on half of the
webhooks), writes it as JSON and as YAML, starts `hooklab serve` on a fresh database, and times:
- `hooklab events import FILE --prefix big. --dry-run`, then the import itself (JSON, then the
  YAML file, which is then a re-import: every event updated);
- the Webhooks page, `GET /api/events/<slug>`, a check and a fire of an imported event, with
  the catalog holding every imported event (median of sequential requests).
Target: the import in seconds, the page and the API in tens of milliseconds.

Usage: python bench/catalog_import.py [--schemas 6000] [--webhooks 2500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

SHARED = 12  # schemas every webhook uses (user, account, repository, ...)
TIMED_GETS = 20
WORDS = (
    "the identifier of the object as the provider assigns it, stable across updates and unique "
    "within one account; clients should treat it as opaque and never parse it"
)


def large_document(schemas: int, webhooks: int) -> dict[str, Any]:
    """An OpenAPI 3.1 document shaped like a large provider's (deterministic)."""
    components: dict[str, Any] = {}
    for i in range(schemas):
        properties: dict[str, Any] = {
            f"field_{k}": {
                "type": ["string", "integer", "boolean", "number"][k % 4],
                "description": f"Field {k} of schema {i}: {WORDS}.",
            }
            for k in range(16)
        }
        properties["id"] = {"type": "integer", "minimum": 1, "description": WORDS}
        properties["owner"] = {"$ref": f"#/components/schemas/Shared{i % SHARED}"}
        if i % 2 == 0 and i + 1 < schemas:
            properties["child"] = {"$ref": f"#/components/schemas/Schema{i + 1}"}
        if i % 5 == 0:
            properties["actor"] = {
                "oneOf": [
                    {"$ref": f"#/components/schemas/Shared{(i + 1) % SHARED}"},
                    {"$ref": f"#/components/schemas/Shared{(i + 2) % SHARED}"},
                ]
            }
        components[f"Schema{i}"] = {
            "type": "object",
            "description": f"Schema {i}. {WORDS}.",
            "required": ["id", "field_0", "owner"],
            "properties": properties,
        }
    for s in range(SHARED):
        components[f"Shared{s}"] = {
            "type": "object",
            "required": ["login", "id"],
            "properties": {
                "login": {"type": "string"},
                "id": {"type": "integer"},
                "url": {"type": "string", "format": "uri"},
                "created_at": {"type": "string", "format": "date-time"},
            },
        }
    hooks: dict[str, Any] = {}
    for w in range(webhooks):
        target = (w * 7) % schemas
        media: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/Schema{target}"}}
        if w % 2 == 0:
            example = {f"field_{k}": ["text", 1, True, 1.5][k % 4] for k in range(16)}
            example.update({"id": w + 1, "owner": {"login": "octo", "id": 1}})
            media["example"] = example
        hooks[f"resource{w}.changed"] = {
            "post": {
                "summary": f"Resource {w} changed",
                "description": f"Sent when resource {w} changes. {WORDS}.",
                "requestBody": {"content": {"application/json": media}},
                "responses": {"200": {"description": "Received"}},
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "A large provider", "version": "1.0.0"},
        "webhooks": hooks,
        "components": {"schemas": components},
    }


def timed(cmd: list[str]) -> tuple[float, str]:
    """Run a command; returns its wall time and output (fails loudly on a non-zero exit)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {done.stdout}{done.stderr}")
    return took, done.stdout


def median_ms(call) -> float:
    """The median of TIMED_GETS sequential calls after a warm-up, in ms."""
    call()
    times = []
    for _ in range(TIMED_GETS):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemas", type=int, default=6000)
    parser.add_argument("--webhooks", type=int, default=2500)
    args = parser.parse_args()
    with common.temp_dir() as tmp:
        document = large_document(args.schemas, args.webhooks)
        as_json = tmp / "provider.json"
        as_yaml = tmp / "provider.yaml"
        as_json.write_text(json.dumps(document))
        as_yaml.write_text(yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=False))
        print(
            f"document: {args.schemas} schemas, {args.webhooks} webhooks; "
            f"JSON {as_json.stat().st_size / 2**20:.1f} MiB, "
            f"YAML {as_yaml.stat().st_size / 2**20:.1f} MiB"
        )
        port = common.free_port()
        db = str(tmp / "hooklab.db")
        with common.running(common.hooklab_serve(db, port), port, "/api/health") as server:
            base = [common.HOOKLAB, "events", "import", "--prefix", "big.", "--server", server.url]
            took, _ = timed([*base, str(as_json), "--dry-run"])
            print(f"dry run (JSON):          {took:6.2f} s")
            took, out = timed([*base, str(as_json)])
            print(f"import (JSON):           {took:6.2f} s   {out.splitlines()[0]}")
            took, out = timed([*base, str(as_yaml)])
            print(f"re-import (YAML):        {took:6.2f} s   {out.splitlines()[0]}")
            slug = "big.resource1.changed"
            session = requests.Session()
            example = session.get(f"{server.url}/api/events/{slug}", timeout=30).json()["payload"]
            figures = {
                "Webhooks page": lambda: session.get(f"{server.url}/webhooks", timeout=30),
                "Webhooks page, one group": lambda: session.get(
                    f"{server.url}/webhooks?group=big.&page=20", timeout=30
                ),
                "GET /api/events/<slug>": lambda: session.get(
                    f"{server.url}/api/events/{slug}", timeout=30
                ),
                "POST /api/events/<slug>/check": lambda: session.post(
                    f"{server.url}/api/events/{slug}/check", json=example, timeout=30
                ),
                "fire (checked payload)": lambda: session.post(
                    f"{server.url}/api/events/{slug}", json=example, timeout=30
                ),
            }
            for label, call in figures.items():
                assert call().status_code < 300, label
                print(f"{label + ':':31s} {median_ms(call):7.1f} ms (median of {TIMED_GETS})")


if __name__ == "__main__":
    main()
