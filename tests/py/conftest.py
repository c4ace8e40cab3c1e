"""Shared pytest fixtures: where the built tools live, helpers to run them, and the C op table
(`tlinfo --ops`) from which the tests derive their op lists."""
import functools
import json
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


# ---------------------------------------------------------------------- the op table
@functools.lru_cache(maxsize=None)
def op_table():
    """`tlinfo --ops` parsed: one dict per op (tag, enum, family, min/max_parents, flags, attrs,
    params [{inline_key, name}], legacy spellings), in the table's order."""
    r = run_tool("tlinfo", "--ops")
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stderr)
    rows = json.loads(r.stdout)
    assert rows and all({"tag", "family", "flags", "attrs", "params", "legacy"} <= set(o) for o in rows)
    return tuple(rows)


def op_rows():
    """{tag: row} of the op table."""
    return {o["tag"]: o for o in op_table()}


def exec_tags():
    """Tags the runtime executes (flag "exec"), in table order."""
    return [o["tag"] for o in op_table() if "exec" in o["flags"]]


def legacy_tags():
    """{older spelling: current tag} from the table."""
    return {old: o["tag"] for o in op_table() for old in o["legacy"]}


def lowered_tags():
    """Executable tags that the importer lowers away before the runtime and the emitter see them
    (the value-graph family "tuple": multihead_attention, tuple_getitem)."""
    return [o["tag"] for o in op_table() if "exec" in o["flags"] and o["family"] == "tuple"]


@pytest.fixture(scope="session")
def ops():
    return op_rows()
