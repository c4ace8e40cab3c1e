"""Shared pytest fixtures: where the built tools live, and helpers to run them."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TL_BUILD_DIR", ROOT / "build"))


def tool(name: str) -> str:
    p = BUILD / name
    if not p.exists():
        pytest.fail(f"{p} is not built: run cmake --build {BUILD}")
    return str(p)


def run_tool(name, *args, check=False, **kw):
    """Run a built tool; returns CompletedProcess with text stdout/stderr."""
    r = subprocess.run([tool(name), *map(str, args)], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{name} {args} exited {r.returncode}: {r.stderr}")
    return r


@pytest.fixture
def root():
    return ROOT


@pytest.fixture
def build_dir():
    return BUILD
