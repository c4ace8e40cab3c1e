"""tlrt's exceptions: one class per tl_err_kind (include/tlrt/tl_err.h), all under tlrt.Error."""
from __future__ import annotations


class Error(Exception):
    """A tlrt failure. `message` is tlrt's one-line message ("graph.json: node[7].perm: ...");
    `kind` is the tl_err_kind number (0 bad input, 1 unsupported, 2 out of memory, 3 I/O,
    4 internal) and `kind_name` its name."""

    kind: int = 4
    kind_name: str = "internal error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInputError(Error, ValueError):
    """Malformed or inconsistent file or argument (tl_err kind BAD_INPUT)."""
    kind, kind_name = 0, "bad input"


class UnsupportedError(Error):
    """Well-formed, but tlrt does not do it: an op, layout, batch, dtype (kind UNSUPPORTED)."""
    kind, kind_name = 1, "unsupported"


class OutOfMemoryError(Error, MemoryError):
    """An allocation failed or a plan needs more memory than allowed (kind OOM)."""
    kind, kind_name = 2, "out of memory"


class IOFailureError(Error, OSError):
    """Reading or writing a file failed for reasons outside the input (kind IO)."""
    kind, kind_name = 3, "I/O error"

    def __init__(self, message: str):
        Error.__init__(self, message)


class InternalError(Error):
    """A broken invariant inside tlrt: a bug (kind INTERNAL)."""
    kind, kind_name = 4, "internal error"


_BY_KIND = (BadInputError, UnsupportedError, OutOfMemoryError, IOFailureError, InternalError)
# Exit statuses of the tools (tl_err_exit_status): 2 bad input/unsupported, 3 OOM, 1 else.
_BY_EXIT = {2: BadInputError, 3: OutOfMemoryError}


def error_for_kind(kind: int, message: str) -> Error:
    cls = _BY_KIND[kind] if 0 <= kind < len(_BY_KIND) else InternalError
    return cls(message)


def error_for_exit(status: int, message: str) -> Error:
    return _BY_EXIT.get(status, Error)(message)
