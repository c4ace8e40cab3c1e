"""Console entry points: tlrun, tlinfo, tlemit, tldiff exec the tools bundled in the package."""
from __future__ import annotations

import os
import sys

from ._lib import find_file


def _exec(name: str) -> None:
    try:
        exe = str(find_file(name))
    except FileNotFoundError as e:
        print(f"{name}: {e}", file=sys.stderr)
        sys.exit(1)
    os.execv(exe, [name] + sys.argv[1:])


def tlrun() -> None:
    _exec("tlrun")


def tlinfo() -> None:
    _exec("tlinfo")


def tlemit() -> None:
    _exec("tlemit")


def tldiff() -> None:
    _exec("tldiff")
