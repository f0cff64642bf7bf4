"""docs/benchmarks.md is exactly what bench/run_all.py writes from docs/benchmarks.json.

The committed page must be checkable against the raw results committed beside it: regenerate
it from the JSON alone (no benchmark runs) and compare.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "docs" / "benchmarks.json"


def regenerate(results: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--from-json", str(results)]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_page_is_what_the_committed_results_give(tmp_path):
    out = tmp_path / "benchmarks.md"
    done = regenerate(RESULTS, out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_text() == PAGE.read_text(), (
        "docs/benchmarks.md differs from what docs/benchmarks.json gives: run "
        "`.venv/bin/python bench/run_all.py --from-json docs/benchmarks.json`"
    )


def test_a_changed_figure_changes_the_page(tmp_path):
    data = json.loads(RESULTS.read_text())
    delivery = data["results"]["delivery"]
    delivery["ratio_bare"] = 0.123
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    out = tmp_path / "benchmarks.md"
    done = regenerate(changed, out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "x0.12" in out.read_text() and out.read_text() != PAGE.read_text()
