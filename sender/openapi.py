"""Reading an OpenAPI 3.1 document's `webhooks` into user events (`hooklab events import`).

For each webhook: the `post` operation's JSON request body gives the schema (local `$ref`s
resolved into one self-contained schema with `$defs`), the summary or description gives the
name and description, and the first example is the event's example (one is generated from the
schema when the document has none). A document that cannot be imported as a whole is refused
with one message (ImportRefused): nothing of it is added.

Large documents (thousands of schemas, tens of MB) must import in seconds: every `$ref` target
is rewritten and checked against the meta-schema once per import, not once per webhook.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from hooklab.sender import user_events
from hooklab.sender.schemas import (
    DIALECT,
    InvalidSchema,
    SchemaValidity,
    compile_validator,
    describe,
    example_from_schema,
    pointer,
    schema_problem,
)

SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{0,100}$")
MAX_NAME = user_events.MAX_NAME
MAX_DESCRIPTION = user_events.MAX_DESCRIPTION


class ImportRefused(ValueError):
    """A document that cannot be imported; the message says which webhook and why."""


@dataclass
class ImportPlan:
    """What an import adds or updates (`events`, columns for the store) and what it skips."""

    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)


def plan_import(document: Any, prefix: str, is_builtin: Callable[[str], bool]) -> ImportPlan:
    """The user events of `document`'s webhooks under `prefix`, or ImportRefused."""
    if not isinstance(prefix, str) or not PREFIX.match(prefix):
        raise ImportRefused(
            "the prefix is up to 100 characters of letters, digits, '_', '.', ':', '-' "
            f"(got {str(prefix)[:80]!r})"
        )
    if not isinstance(document, dict):
        raise ImportRefused("the document is not an OpenAPI document (a JSON or YAML object)")
    version = document.get("openapi")
    if not isinstance(version, str) or not re.match(r"^3\.1(\.|$)", version):
        shown = f"openapi: {version!r}" if version is not None else "no 'openapi' field"
        raise ImportRefused(
            f"the document is not OpenAPI 3.1 ({shown}); only OpenAPI 3.1 has a webhooks section"
        )
    webhooks = document.get("webhooks")
    if not isinstance(webhooks, dict) or not webhooks:
        raise ImportRefused("the document has no webhooks section (OpenAPI 3.1 'webhooks')")
    bundler = Bundler(document)
    plan = ImportPlan()
    for name, path_item in webhooks.items():
        where = f"webhook {name!r}"
        slug = f"{prefix}{name}"
        problem = user_events.check_slug(slug, is_builtin)
        if problem:
            raise ImportRefused(f"{where}: {problem}")
        try:
            event = _event(bundler, str(name), path_item)
        except RecursionError:
            raise ImportRefused(f"{where}: the schema is nested too deeply") from None
        if isinstance(event, str):
            plan.skipped.append({"name": name, "reason": event})
            continue
        columns, note = event
        plan.events.append(
            {"slug": slug, "prefix": prefix or user_events.prefix_of(slug), **columns}
        )
        if note:
            plan.notes.append({"slug": slug, "note": note})
    if not plan.events:
        reasons = "; ".join(f"{s['name']}: {s['reason']}" for s in plan.skipped[:3])
        raise ImportRefused(
            f"no webhook of the document has a JSON request body to import ({reasons})"
        )
    return plan


def _event(bundler: Bundler, webhook: str, path_item: Any) -> tuple[dict[str, Any], str] | str:
    """The columns of one webhook's event, or why it is skipped (a string)."""
    where = f"webhook {webhook!r}"
    path_item = bundler.follow(path_item, where)
    operation = path_item.get("post") if isinstance(path_item, dict) else None
    if not isinstance(operation, dict):
        return "no post operation"
    body = bundler.follow(operation.get("requestBody"), where)
    content = body.get("content") if isinstance(body, dict) else None
    media = _json_media(content) if isinstance(content, dict) else None
    if media is None:
        return "no JSON request body (application/json)"
    media = bundler.follow(media, where)
    schema = None
    if media.get("schema") is not None:
        schema = bundler.bundle(media["schema"], where)
        problem = schema_problem(schema)
        if problem is not None:
            raise ImportRefused(f"{where}: the request body schema cannot be used: {problem}")
    example = _first_example(bundler, media, where)
    if example is ... and schema is not None:
        example = example_from_schema(schema)
        generated = True
    else:
        generated = False
    if example is ...:
        return "neither a schema nor an example"
    if not isinstance(example, dict):
        return "the request body is not a JSON object"
    note = ""
    if schema is not None:
        # One problem is enough for a note; the full check (with warnings) costs far more.
        error = next(compile_validator(schema).iter_errors(example), None)
        if error is not None:
            made = "generated example" if generated else "example"
            where = pointer(error.absolute_path) or "/"
            note = f"its {made} does not match its schema ({where}: {describe(error)})"
    summary = operation.get("summary") if isinstance(operation.get("summary"), str) else ""
    description = operation.get("description")
    description = description if isinstance(description, str) else ""
    name = (summary or webhook).strip()
    return (
        {
            "name": _cut(name, MAX_NAME),
            "description": _cut((description or summary).strip(), MAX_DESCRIPTION),
            "payload": json.dumps(example, ensure_ascii=False),
            "schema": json.dumps(schema, ensure_ascii=False) if schema is not None else None,
            "example_generated": generated,
        },
        note,
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_media(content: dict[str, Any]) -> Any:
    if "application/json" in content:
        return content["application/json"]
    for media_type, media in content.items():
        base = str(media_type).split(";", 1)[0].strip().lower()
        if base == "application/json" or base.endswith("+json"):
            return media
    return None


def _first_example(bundler: Bundler, media: dict[str, Any], where: str) -> Any:
    """The media type's example, else its first `examples` value, else the schema's; else ..."""
    if "example" in media:
        return media["example"]
    examples = media.get("examples")
    if isinstance(examples, dict):
        for item in examples.values():
            item = bundler.follow(item, where)
            if isinstance(item, dict) and "value" in item:
                return item["value"]
    schema = bundler.follow(media.get("schema"), where)
    if isinstance(schema, dict):
        if isinstance(schema.get("examples"), list) and schema["examples"]:
            return schema["examples"][0]
        if "example" in schema:
            return schema["example"]
    return ...


class Bundler:
    """Resolves a document's local `$ref`s into self-contained schemas.

    Each `$ref` target becomes an entry of `$defs` (`#/components/schemas/Pet` -> `#/$defs/Pet`);
    targets are rewritten and checked once, and shared by every webhook that uses them.
    """

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.names: dict[str, str] = {}  # $ref -> its name in $defs
        self.taken: set[str] = set()
        self.rewritten: dict[str, Any] = {}  # $ref -> target with its refs rewritten
        self.refs_of: dict[str, set[str]] = {}  # $ref -> the $refs its target uses directly
        self.validity = SchemaValidity()

    def follow(self, node: Any, where: str) -> Any:
        """`node`, or what its `$ref` points to (path items, bodies, examples: not schemas)."""
        seen = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                raise ImportRefused(f"{where}: $ref {ref!r} refers to itself")
            seen.add(ref)
            node = self.target(ref, where)
        return node

    def target(self, ref: str, where: str) -> Any:
        """The node a local `$ref` points to, or ImportRefused."""
        if not ref.startswith("#"):
            raise ImportRefused(
                f"{where}: $ref {ref!r} is not local; only references within the document "
                "(#/...) can be resolved"
            )
        node: Any = self.document
        for part in unquote(ref[1:]).split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise ImportRefused(f"{where}: $ref {ref!r} does not resolve")
        return node

    def bundle(self, schema: Any, where: str) -> dict[str, Any]:
        """A self-contained, checked draft 2020-12 schema for `schema` (refs into `$defs`)."""
        refs: set[str] = set()
        root = self._rewrite(schema, refs, where)
        self._check(root, where, "the request body schema")
        closure: set[str] = set()
        pending = list(refs)
        while pending:
            ref = pending.pop()
            if ref in closure:
                continue
            closure.add(ref)
            self._resolve(ref, where)
            pending.extend(self.refs_of[ref] - closure)
        if isinstance(root, bool):
            root = {} if root else {"not": {}}
        bundled = {"$schema": DIALECT, **{k: v for k, v in root.items() if k != "$schema"}}
        if closure:
            defs = dict(bundled.get("$defs") or {})
            for ref in sorted(closure, key=lambda r: self.names[r]):
                defs[self.names[ref]] = self.rewritten[ref]
            bundled["$defs"] = defs
        return bundled

    def _resolve(self, ref: str, where: str) -> None:
        if ref in self.rewritten:
            return
        target = self.target(ref, where)
        refs: set[str] = set()
        self.rewritten[ref] = self._rewrite(target, refs, where)
        self.refs_of[ref] = refs
        self._check(self.rewritten[ref], where, f"the schema {ref!r}")

    def _check(self, schema: Any, where: str, what: str) -> None:
        try:
            self.validity.check(schema)
        except InvalidSchema as exc:
            raise ImportRefused(
                f"{where}: {what} is not valid JSON Schema (2020-12): {exc}"
            ) from None

    def _name(self, ref: str) -> str:
        found = self.names.get(ref)
        if found is None:
            parts = [
                p.replace("~1", "/").replace("~0", "~") for p in unquote(ref[1:]).split("/")[1:]
            ]
            if len(parts) == 3 and parts[:2] == ["components", "schemas"]:
                base = parts[2]
            else:
                base = ".".join(parts[1:] if parts[:1] == ["components"] else parts) or "root"
            base = base.replace("/", "_").replace("~", "_")
            found, n = base, 2
            while found in self.taken:
                found, n = f"{base}_{n}", n + 1
            self.taken.add(found)
            self.names[ref] = found
        return found

    def _rewrite(self, node: Any, refs: set[str], where: str) -> Any:
        """A copy of a schema node with each local `$ref` pointing into `$defs`."""
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    self.target(value, where)  # refuses a ref that does not resolve
                    refs.add(value)
                    out[key] = "#/$defs/" + self._name(value).replace("~", "~0").replace("/", "~1")
                elif key in SCHEMA_MAPS and isinstance(value, dict):
                    # Property names are data: a property called "example" is still a schema.
                    out[key] = {
                        name: self._rewrite(sub, refs, where) for name, sub in value.items()
                    }
                elif key in ("example", "examples", "enum", "const", "default"):
                    out[key] = value
                else:
                    out[key] = self._rewrite(value, refs, where)
            return out
        if isinstance(node, list):
            return [self._rewrite(item, refs, where) for item in node]
        return node
