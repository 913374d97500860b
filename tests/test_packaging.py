"""A non-editable install carries the CUDA sources: the wheel holds kernels/ inside the package, and the kernel
loader finds them there (not only in a source checkout)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# Builds and subprocesses that --device does not reach: the session without --device runs them.
pytestmark = pytest.mark.device_independent

ROOT = Path(__file__).resolve().parents[1]


def _source_names() -> set:
    kernels = ROOT / "kernels"
    return {str(p.relative_to(kernels)) for p in kernels.rglob("*") if p.suffix in (".cu", ".cuh", ".h")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)]
    if importlib.util.find_spec("setuptools") is not None:
        command.append("--no-build-isolation")  # build with the setuptools already here (no download)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = out.glob("gradcore-*.whl")
    return path


def test_the_wheel_holds_every_kernel_source(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"gradcore/_kernels/" + name for name in _source_names()}
    assert expected and expected <= names, sorted(expected - names)


def test_the_loader_reads_the_sources_from_an_installed_wheel(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import gradcore.backend.kernels as k, pathlib, sys\n"
        "assert pathlib.Path(k.KERNEL_DIR).is_relative_to(pathlib.Path(sys.argv[1])), k.KERNEL_DIR\n"
        "for family in k.FAMILY_SOURCES:\n"
        "    text = k.source(family)\n"
        "    assert 'namespace gradcore' in text and '#include \"' not in text\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    # Run outside the checkout, so that the checkout's gradcore/ cannot be imported instead.
    result = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
