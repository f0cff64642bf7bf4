"""The layout stays true: imports run one way, `cli -> client -> app -> {bin_server, sender} ->
shared`, the two halves never import each other, and no module imports itself round a cycle.

Read from the source with `ast` (imports inside functions count too), so a new arrow against
the order fails here, before it can become an import cycle hidden in a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RANK = {"shared": 0, "bin_server": 1, "sender": 1, "app": 2, "client": 3, "cli": 4}


def modules() -> dict[str, Path]:
    """Every module of the code folders, by its dotted name under `hooklab`."""
    found = {}
    for folder in RANK:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [folder, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found["hooklab." + ".".join(parts)] = path
    return found


MODULES = modules()


def imports_of(name: str, path: Path) -> set[str]:
    """The hooklab modules `name` imports (a `from pkg import sub` counts as `pkg.sub`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def folder(module: str) -> str:
    return module.split(".")[1]


def test_every_code_folder_is_seen():
    assert {folder(m) for m in MODULES} == set(RANK)
    assert len(MODULES) > 30


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_one_way(name):
    mine = folder(name)
    against = sorted(
        target
        for target in GRAPH[name]
        if folder(target) != mine and RANK[folder(target)] >= RANK[mine]
    )
    assert not against, (
        f"{name} imports {against}: imports run cli -> client -> app -> "
        "{bin_server, sender} -> shared, and the halves do not import each other"
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle a depth-first walk of `graph` meets, each as a closed path."""
    found = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                found.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return found


def test_no_import_cycles():
    found = cycles(GRAPH)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_checker_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_sees_a_hidden_import(tmp_path):
    # An import inside a function counts: a shared module importing the bin is caught.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from hooklab.bin_server import bins\n")
    assert imports_of("hooklab.shared.bad", bad) == {"hooklab.bin_server.bins"}


def test_the_client_starts_without_flask():
    # The CLI's calls and the pytest plugin load the client; a top-level import of
    # shared/own_server (for one replay check) had made each of them import Flask too.
    code = "import sys, hooklab.client.http; print('flask' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_server_starts_without_the_schema_and_websocket_libraries(tmp_path):
    # jsonschema (with referencing, attrs) and flask-sock (with simple-websocket, wsproto,
    # h11) were two fifths of the serving process's imports (docs/benchmarks.md, start-up):
    # they load on the first schema check and the first websocket, not at start.
    code = (
        "import sys\n"
        "from hooklab.app.factory import create_app, start_background, stop_background\n"
        "from hooklab.shared.settings import Settings\n"
        f"app = create_app(Settings({{'db': {str(tmp_path / 'h.db')!r}}}))\n"
        "start_background(app)\n"
        "assert app.test_client().get('/api/health').status_code == 200\n"
        "stop_background(app)\n"
        "late = ('jsonschema', 'referencing', 'flask_sock', 'simple_websocket', 'wsproto', 'h11')\n"
        "print(sorted(name for name in late if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
