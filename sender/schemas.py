"""Event schemas: one derived from an example payload, and the check of a payload against one.

Checks use the `jsonschema` package (draft 2020-12), never a hand-written validator. A problem
is `{"path", "message"}` with `path` a JSON Pointer. A key the schema does not name is not a
problem but a warning: receivers should accept new keys, and the plugin adds some over time.

A schema is self-contained: its `$ref`s point within itself (`#...`), and nothing a schema names
is ever fetched (no URL, no file). A schema that cannot check payloads (a reference outside it
or to nowhere, a pattern that is not a regular expression, a loop of references) is refused
when it is saved; one saved before those checks makes each check report why instead.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry, Resource

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Marks the `unevaluatedProperties: false` added to find unexpected keys, so that only those
# (never one the schema's author wrote) become warnings.
STRICT_MARK = "hooklab: added to report unexpected keys as warnings"
MAX_MESSAGE = 300
JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


class InvalidSchema(ValueError):
    """A schema that is not valid JSON Schema; the message says where and why."""


class UnusableSchema(InvalidSchema):
    """A valid schema that cannot check payloads on its own; the message says where and why."""


def _refuse_retrieval(uri: str) -> Resource:
    """The registry's way to fetch what a schema names: never (no URL, no file)."""
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)


@cache
def no_retrieval() -> Registry:
    """The registry every check uses: whatever is not in the schema itself is simply not found.

    Without one, jsonschema fetches what a `$ref` names (http://, file://) with urlopen.
    jsonschema is imported on first use, not when the server starts (it is a tenth of the
    start-up's imports: docs/benchmarks.md).
    """
    from referencing import Registry

    return Registry(retrieve=_refuse_retrieval)


def compile_validator(schema: Any) -> Draft202012Validator:
    """A draft 2020-12 validator for `schema` that never fetches anything its `$ref`s name."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema, registry=no_retrieval())


def derive_schema(example: dict[str, Any], optional: Iterable[str] = ()) -> dict[str, Any]:
    """The schema of payloads shaped like `example`: its types, every key required but `optional`.

    A key whose example is null accepts any type (the example says nothing about it).
    """
    schema = _derive(example)
    schema["required"] = [key for key in schema["required"] if key not in set(optional)]
    return {"$schema": DIALECT, **schema}


def _derive(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {
            "type": "object",
            "properties": {key: _derive(item) for key, item in value.items()},
            "required": list(value),
        }
    if isinstance(value, list):
        return {"type": "array", "items": _derive(value[0])} if value else {"type": "array"}
    return {"type": JSON_TYPES.get(type(value), "string")}


def check_schema(schema: Any) -> None:
    """Raise InvalidSchema unless `schema` is a valid draft 2020-12 schema that can check payloads.

    UnusableSchema (an InvalidSchema) when it is valid but cannot check payloads on its own:
    see `schema_problem`.
    """
    SchemaValidity().check(schema)
    problem = schema_problem(schema)
    if problem is not None:
        raise UnusableSchema(problem)


# Where a schema holds other schemas (draft 2020-12, plus the legacy `definitions`).
ONE_SCHEMA = (
    "items", "additionalProperties", "unevaluatedItems", "unevaluatedProperties", "not", "if",
    "then", "else", "contains", "propertyNames", "contentSchema",
)  # fmt: skip
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
ANNOTATIONS = ("title", "description", "$comment")
# Where a schema applies other schemas to the same value (not to a part of it).
IN_PLACE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas")
REFERENCES = ("$ref", "$dynamicRef")
LOCAL_ONLY = "only references within the document (#/...) can be resolved"


class SchemaValidity:
    """Checks schemas against the 2020-12 meta-schema, one schema object at a time.

    The meta-schema checks every subschema with the whole meta-schema again, so a schema is
    valid when each of its schema objects is, taken alone with its subschemas replaced by
    `true`. Taken alone, most of a large document's objects look the same (`{"type":
    "string"}`): each distinct shape is checked once. Running the meta-schema over a
    provider's whole document instead takes minutes.
    """

    def __init__(self) -> None:
        from jsonschema import Draft202012Validator

        self.validator = compile_validator(Draft202012Validator.META_SCHEMA)
        self.known_good: set[str] = set()

    def check(self, schema: Any) -> None:
        """Raise InvalidSchema unless `schema` is a valid draft 2020-12 schema.

        UnusableSchema when one of its schema objects has a `$ref` outside the document or a
        pattern that is not a regular expression (`node_problem`).
        """
        if not isinstance(schema, (dict, bool)):
            raise InvalidSchema("a schema is a JSON object (or true or false)")
        stack: list[tuple[Any, tuple[Any, ...]]] = [(schema, ())]
        while stack:
            node, path = stack.pop()
            if not isinstance(node, dict):
                continue
            alone = self._alone(node, path, stack)
            key = json.dumps(alone, sort_keys=True, default=repr)
            if key not in self.known_good:
                error = _best_match(self.validator.iter_errors(alone))
                if error is not None:
                    where = pointer([*path, *error.path]) or "/"
                    raise InvalidSchema(f"at {where}: {_short(error.message)}")
                self.known_good.add(key)
            found = node_problem(node)
            if found is not None:
                raise UnusableSchema(f"at {pointer([*path, *found[0]])}: {found[1]}")

    @staticmethod
    def _alone(node: dict, path: tuple[Any, ...], stack: list) -> dict[str, Any]:
        """`node` with its subschemas replaced by `true` (queued on `stack`), annotations by ""."""
        alone: dict[str, Any] = {}
        for key, value in node.items():
            if key in ONE_SCHEMA and isinstance(value, (dict, bool)):
                stack.append((value, (*path, key)))
                alone[key] = True
            elif key in SCHEMA_LISTS and isinstance(value, list) and value:
                stack.extend((item, (*path, key, i)) for i, item in enumerate(value))
                alone[key] = [True]
            elif key in SCHEMA_MAPS and isinstance(value, dict):
                stack.extend((item, (*path, key, name)) for name, item in value.items())
                alone[key] = {}
            elif key in ANNOTATIONS and isinstance(value, str):
                alone[key] = ""
            elif key in ("enum", "examples") and isinstance(value, list):
                alone[key] = []
            elif key in ("default", "const", "example"):
                continue  # any value is valid
            elif key == "required" and _unique_strings(value):
                alone[key] = []
            else:
                alone[key] = value
        return alone


def _unique_strings(value: Any) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(v, str) for v in value)
        and len(set(value)) == len(value)
    )


def node_problem(node: dict[str, Any]) -> tuple[tuple[str, ...], str] | None:
    """What in one schema object cannot check payloads, or None: `(path within it, why)`.

    A reference outside the document (it would have to be fetched), or a `pattern` or
    `patternProperties` name that is not a regular expression of Python's `re`, which
    jsonschema checks them with.
    """
    for key in REFERENCES:
        ref = node.get(key)
        if isinstance(ref, str) and not ref.startswith("#"):
            return (key,), f"{key} {_short(repr(ref))} is not local; {LOCAL_ONLY}"
    patterns = [(("pattern",), node.get("pattern"))]
    if isinstance(node.get("patternProperties"), dict):
        patterns += [(("patternProperties", name), name) for name in node["patternProperties"]]
    for where, pattern in patterns:
        problem = _regex_problem(pattern) if isinstance(pattern, str) else None
        if problem is not None:
            return where, problem
    return None


def _regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        return f"{_short(repr(pattern))} is not a valid regular expression ({exc})"
    return None


def has_patterns(nodes: dict[int, tuple[dict[str, Any], tuple[Any, ...], Any]]) -> bool:
    """Whether any of a schema's objects (`_positions`) has a `pattern` or `patternProperties`."""
    return any(
        isinstance(node.get("pattern"), str) or node.get("patternProperties")
        for node, _, _ in nodes.values()
    )


def schema_problem(schema: Any, nodes: dict | None = None) -> str | None:
    """Why `schema` (a valid one) cannot check payloads on its own, or None.

    A `$ref` or `$dynamicRef` outside the document (nothing is ever fetched), to nowhere or to
    something that is not a schema; a pattern that is not a regular expression; a loop of
    references that comes back to a schema before looking into any part of the payload (a
    check would never end). Walks the schema without recursion: it may be deep. `nodes`: its
    objects, when the caller has them already (`_positions`).
    """
    if not isinstance(schema, dict):
        return None
    nodes = _positions(schema) if nodes is None else nodes
    for node, path, _ in nodes.values():
        found = node_problem(node)
        if found is not None:
            return f"at {pointer([*path, *found[0]])}: {found[1]}"
    edges: dict[int, list[int]] = {}
    for node, path, resolver in nodes.values():
        targets = edges[id(node)] = [id(sub) for sub in _in_place(node) if isinstance(sub, dict)]
        for key in REFERENCES:
            ref = node.get(key)
            if not isinstance(ref, str):
                continue
            where = f"at {pointer([*path, key])}: {key} {_short(repr(ref))}"
            try:
                target = resolver.lookup(ref).contents
            except _unresolvable():
                return f"{where} does not resolve"
            if isinstance(target, dict) and id(target) in nodes:
                targets.append(id(target))
            elif not isinstance(target, bool):
                return f"{where} does not point to a schema"
    looped = _loop(edges)
    if looped is not None:
        return (
            f"at {pointer(nodes[looped][1]) or '/'}: references lead back to this schema before "
            "checking any part of the payload (a loop: a check would never end)"
        )
    return None


def _positions(schema: dict[str, Any]) -> dict[int, tuple[dict[str, Any], tuple[Any, ...], Any]]:
    """Each schema object of `schema` by id: the object, its path, and its `$ref` resolver."""
    from referencing.jsonschema import DRAFT202012

    root = DRAFT202012.create_resource(schema)
    stack = [(schema, (), no_retrieval().resolver_with_root(root))]
    found: dict[int, tuple[dict[str, Any], tuple[Any, ...], Any]] = {}
    while stack:
        node, path, resolver = stack.pop()
        if not isinstance(node, dict) or id(node) in found:
            continue
        if path and isinstance(node.get("$id"), str):
            resolver = resolver.in_subresource(DRAFT202012.create_resource(node))
        found[id(node)] = (node, path, resolver)
        for key, value in node.items():
            if key in ONE_SCHEMA:
                stack.append((value, (*path, key), resolver))
            elif key in SCHEMA_LISTS and isinstance(value, list):
                stack.extend((item, (*path, key, i), resolver) for i, item in enumerate(value))
            elif key in SCHEMA_MAPS and isinstance(value, dict):
                stack.extend((item, (*path, key, name), resolver) for name, item in value.items())
    return found


def _in_place(node: dict[str, Any]) -> Iterator[Any]:
    """The schemas `node` applies to the same value as itself (not `$ref`: resolved apart)."""
    for key in IN_PLACE:
        value = node.get(key)
        if isinstance(value, list):
            yield from value
        elif isinstance(value, dict) and key == "dependentSchemas":
            yield from value.values()
        elif value is not None:
            yield value


def _loop(edges: dict[int, list[int]]) -> int | None:
    """A node that `edges` lead back to, or None (a depth-first search with an explicit stack)."""
    done: set[int] = set()
    for start in edges:
        if start in done:
            continue
        on_path = {start}
        stack = [(start, iter(edges[start]))]
        while stack:
            node, following = stack[-1]
            child = next(following, None)
            if child is None:
                stack.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return child
            elif child not in done:
                on_path.add(child)
                stack.append((child, iter(edges.get(child, ()))))
    return None


def pointer(parts: Iterable[Any]) -> str:
    """A JSON Pointer (RFC 6901) from path parts: ["a", 0, "b/c"] -> "/a/0/b~1c"."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def problems_summary(problems: list[dict[str, str]], limit: int = 3) -> str:
    """'2 problems: /a: required key is missing; /b: expected integer, got string'."""
    count = len(problems)
    shown = "; ".join(f"{p['path'] or '/'}: {p['message']}" for p in problems[:limit])
    more = f"; and {count - limit} more" if count > limit else ""
    return f"{count} problem{'' if count == 1 else 's'}: {shown}{more}"


@dataclass(frozen=True)
class Checker:
    """A compiled schema: the validator, and its strict twin that finds unexpected keys.

    `problem` says why the schema cannot check payloads (one saved before such schemas were
    refused): each check then reports it instead of running the validators (None).
    """

    validator: Draft202012Validator | None
    strict: Draft202012Validator | None
    problem: str | None = None
    # A schema with a `pattern` or `patternProperties` is checked in a helper process, with a
    # deadline (sender/pattern_checks.py): `re` cannot be interrupted.
    with_patterns: dict[str, Any] | None = None

    @classmethod
    def for_schema(cls, schema: dict[str, Any]) -> Checker:
        """Compile `schema` (checked when the event was saved, and again here for its refs)."""
        nodes = _positions(schema) if isinstance(schema, dict) else {}
        problem = schema_problem(schema, nodes)
        if problem is None:
            try:
                return cls(
                    compile_validator(schema),
                    compile_validator(strict_variant(schema)),
                    with_patterns=schema if has_patterns(nodes) else None,
                )
            except RecursionError:
                problem = "the schema is nested too deeply to check payloads against it"
        return cls(None, None, problem)

    def check(self, payload: Any) -> dict[str, Any]:
        """`{"valid", "problems", "warnings"?}` for `payload`.

        Raises RecursionError for a payload nested too deeply to check.
        """
        if self.with_patterns is None or self.validator is None:
            return self.check_here(payload)
        from hooklab.sender.pattern_checks import NotChecked, pattern_checks

        try:
            return pattern_checks().check(self.with_patterns, payload)
        except NotChecked as exc:
            message = f"not checked: {exc}"
            return {"valid": False, "problems": [{"path": "", "message": message}]}

    def check_here(self, payload: Any) -> dict[str, Any]:
        """`check`, in this process whatever the schema (the helper's own check)."""
        if self.validator is None or self.strict is None:
            return self._unusable(self.problem or "it could not be compiled")
        try:
            problems = list(_problems(self.validator.iter_errors(payload)))
            warnings = _unexpected_keys(self.strict.iter_errors(payload), problems)
        except _unresolvable() as exc:  # a safety net: for_schema resolved every $ref already
            return self._unusable(f"a reference does not resolve ({_short(str(exc))})")
        except re.error as exc:
            return self._unusable(f"a pattern is not a valid regular expression ({exc})")
        result: dict[str, Any] = {"valid": not problems, "problems": problems}
        if warnings:
            result["warnings"] = warnings
        return result

    @staticmethod
    def _unusable(why: str) -> dict[str, Any]:
        message = f"the event's schema cannot check payloads: {why}"
        return {"valid": False, "problems": [{"path": "", "message": message}]}


def _problems(errors: Iterator[ValidationError]) -> Iterator[dict[str, str]]:
    missing_seen: set[tuple[str, str]] = set()
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        where = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            # jsonschema reports one error per missing key, each with the whole required list:
            # name each missing key once, at its own path.
            for key in error.validator_value:
                if key not in error.instance and (pointer(where), key) not in missing_seen:
                    missing_seen.add((pointer(where), key))
                    yield {"path": pointer([*where, key]), "message": "required key is missing"}
            continue
        yield {"path": pointer(where), "message": describe(error)}


def describe(error: ValidationError) -> str:
    """A short message for one validation error (never the whole payload's repr)."""
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"expected {wanted}, got {JSON_TYPES.get(type(error.instance), 'a value')}"
    if error.validator in ("oneOf", "anyOf") and error.context:
        deepest = _best_match(error.context)
        inner = f"{pointer(deepest.absolute_path) or '/'}: {describe(deepest)}"
        return f"matches none of the allowed shapes ({error.validator}; closest: {inner})"
    if error.validator == "enum":
        return f"must be one of {_short(repr(error.validator_value))}"
    if error.validator == "const":
        return f"must be {_short(repr(error.validator_value))}"
    return _short(error.message)


def _unresolvable() -> type[Exception]:
    """The error of a `$ref` that does not resolve (referencing, imported on first use)."""
    from referencing.exceptions import Unresolvable

    return Unresolvable


def _best_match(errors: Iterable[ValidationError]) -> ValidationError | None:
    from jsonschema.exceptions import best_match

    return best_match(errors)


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _unexpected_keys(
    errors: Iterator[ValidationError], problems: list[dict[str, str]]
) -> list[dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for error in _strict_errors(errors):
        node = error.schema if isinstance(error.schema, dict) else {}
        known = node.get("properties", {})
        for key in error.instance:
            if key not in known and repr(key) in error.message:
                path = pointer([*error.absolute_path, key])
                found[path] = {
                    "path": path,
                    "message": "unexpected key (the schema does not name it)",
                }
    problem_paths = {p["path"] for p in problems}
    return [w for path, w in sorted(found.items()) if path not in problem_paths]


def _strict_errors(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """The errors of the strict run that are unexpected keys, looking into oneOf/anyOf."""
    for error in errors:
        if error.validator == "unevaluatedProperties":
            if isinstance(error.schema, dict) and error.schema.get("$comment") == STRICT_MARK:
                yield error
        elif error.validator in ("oneOf", "anyOf") and error.context:
            # The branch whose only faults are unexpected keys is the one the payload meant.
            branches: dict[Any, list[ValidationError]] = {}
            for inner in error.context:
                branches.setdefault(inner.relative_schema_path[0], []).append(inner)
            for branch in branches.values():
                if all(_only_unexpected(e) for e in branch):
                    yield from _strict_errors(branch)
                    break


def _only_unexpected(error: ValidationError) -> bool:
    if error.validator == "unevaluatedProperties":
        return isinstance(error.schema, dict) and error.schema.get("$comment") == STRICT_MARK
    if error.validator in ("oneOf", "anyOf") and error.context:
        return True
    return False


def strict_variant(schema: Any) -> Any:
    """A copy of `schema` where objects that name their properties allow no other key.

    `unevaluatedProperties` (not `additionalProperties`) so keys named through `$ref` or a
    `oneOf` branch count as named. Members of an `allOf`, and definitions an `allOf` refers to,
    are left open: each sees only part of the object.
    """
    strict = copy.deepcopy(schema)
    shared = set()
    for node in _nodes(strict):
        for member in node.get("allOf", []) if isinstance(node.get("allOf"), list) else []:
            if isinstance(member, dict):
                shared.add(id(member))
                ref = member.get("$ref")
                target = _local_target(strict, ref) if isinstance(ref, str) else None
                if isinstance(target, dict):
                    shared.add(id(target))
    for node in _nodes(strict):
        if (
            id(node) not in shared
            and isinstance(node.get("properties"), dict)
            and not {"additionalProperties", "unevaluatedProperties", "patternProperties"}
            & set(node)
            and "$comment" not in node
        ):
            node["unevaluatedProperties"] = False
            node["$comment"] = STRICT_MARK
    return strict


def _nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema object inside `schema` (iteratively: imported schemas can be deep)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            for key, value in node.items():
                if key in ("properties", "$defs", "patternProperties", "dependentSchemas"):
                    if isinstance(value, dict):
                        stack.extend(value.values())
                elif key in ("enum", "const", "examples", "example", "default"):
                    continue
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def _local_target(schema: Any, ref: str) -> Any:
    if not ref.startswith("#/"):
        return None
    node = schema
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


MAX_EXAMPLE_DEPTH = 12
# Values an example may hold: a wide schema nested deep would otherwise make millions.
MAX_EXAMPLE_VALUES = 5000
FORMAT_EXAMPLES = {
    "date-time": "2026-01-01T12:00:00Z",
    "date": "2026-01-01",
    "time": "12:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.com",
}


def example_from_schema(schema: Any) -> Any:
    """An example value for `schema` (a self-contained one: `$ref`s point into its `$defs`).

    Uses the schema's own `examples`, `default`, `const` or first `enum` value where it has
    them, the first branch of a `oneOf`/`anyOf`, every member of an `allOf`, and a plain value
    of the right type elsewhere. A cycle of `$ref`s stops at an optional key (or null), and
    so does a schema so wide and deep that its example would hold too many values.
    """
    return _example(schema, schema, (), 0, [MAX_EXAMPLE_VALUES])


def _example(node: Any, root: Any, seen: tuple[str, ...], depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if not isinstance(node, dict) or depth > MAX_EXAMPLE_DEPTH or budget[0] < 0:
        return None
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = _local_target(root, ref)
        if ref in seen or target is None:
            return None
        found = _example(target, root, (*seen, ref), depth + 1, budget)
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _combine(found, _example(rest, root, seen, depth + 1, budget)) if rest else found
    if "const" in node:
        return node["const"]
    if isinstance(node.get("examples"), list) and node["examples"]:
        return node["examples"][0]
    for key in ("example", "default"):
        if key in node:
            return node[key]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][0]
    value: Any = None
    for key in ("oneOf", "anyOf"):
        if isinstance(node.get(key), list) and node[key]:
            value = _example(node[key][0], root, seen, depth + 1, budget)
            break
    for member in node.get("allOf") or []:
        value = _combine(value, _example(member, root, seen, depth + 1, budget))
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in node else "array" if "items" in node else None
    if kind == "object":
        own = {}
        required = set(node.get("required") or [])
        for key, sub in (node.get("properties") or {}).items():
            sub_ref = sub.get("$ref") if isinstance(sub, dict) else None
            if key not in required and (
                sub_ref in seen or depth >= MAX_EXAMPLE_DEPTH - 1 or budget[0] <= 0
            ):
                continue  # an optional key that would only repeat the cycle
            own[key] = _example(sub, root, seen, depth + 1, budget)
        return _combine(value, own)
    if value is not None:
        return value
    if kind == "array":
        item = _example(node.get("items"), root, seen, depth + 1, budget)
        return [item] * max(1, int(node.get("minItems") or 1)) if "items" in node else []
    if kind == "string":
        text = FORMAT_EXAMPLES.get(node.get("format"), "string")
        low = int(node.get("minLength") or 0)
        high = node.get("maxLength")
        text = text.ljust(low, "x")
        return text[: int(high)] if isinstance(high, int) else text
    if kind in ("integer", "number"):
        for key, step in (("minimum", 0), ("exclusiveMinimum", 1)):
            if isinstance(node.get(key), (int, float)):
                return node[key] + step
        if isinstance(node.get("maximum"), (int, float)) and node["maximum"] < 0:
            return node["maximum"]
        return 0
    if kind == "boolean":
        return False
    return None


def _combine(first: Any, second: Any) -> Any:
    if isinstance(first, dict) and isinstance(second, dict):
        return {**first, **second}
    return second if first is None else first
