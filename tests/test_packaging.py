"""The wheel installs under the `hooklab` namespace and finds its templates and static files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = r"""
import sys, tempfile, pathlib
import hooklab.shared
from hooklab.app.factory import create_app, PACKAGE_ROOT
from hooklab.shared.settings import Settings
wheel_dir = pathlib.Path(sys.argv[1]).resolve()
here = pathlib.Path(hooklab.shared.__file__).resolve()
assert here.is_relative_to(wheel_dir), here
app = create_app(Settings({"db": tempfile.mkdtemp() + "/t.db"}, environ={}))
client = app.test_client()
assert client.get("/static/app.css").status_code == 200
page = client.get("/no-such-page")
assert page.status_code == 404 and b"Hooklab" in page.data, page.data[:200]
print("OK", PACKAGE_ROOT)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy of what git tracks, so a stale build/ folder cannot leak into the wheel.
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, timeout=30,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         str(source), "-w", str(out)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (path,) = out.glob("hooklab-*.whl")
    return path


def test_wheel_holds_the_namespace_packages_and_package_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("sender", "bin_server", "shared", "templates", "static"):
        assert any(n.startswith(f"hooklab/{package}/") for n in names), package
    assert "hooklab/templates/base.html" in names
    assert "hooklab/static/app.css" in names
    assert not any(n.startswith(("shared/", "sender/", "bin_server/")) for n in names)
    assert not any(n.startswith("hooklab/__init__") for n in names)  # a namespace package


def test_installed_wheel_serves_templates_and_static_files(wheel, tmp_path):
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    # -S skips site-packages' .pth files, so the editable install of this checkout cannot
    # shadow the wheel; the dependencies come from this venv's site-packages on PYTHONPATH.
    deps = sysconfig.get_paths()["purelib"]
    result = subprocess.run(
        [sys.executable, "-S", "-c", CHECK, str(target)],
        env={"PYTHONPATH": f"{target}:{deps}", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
