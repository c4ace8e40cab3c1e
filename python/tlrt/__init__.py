"""tlrt: run TorchLean IR graphs (torchlean.ir.v1) natively from Python.

    import tlrt
    g = tlrt.capture(model, torch.randn(2, 4))      # needs torch (pip install 'tlrt[capture]')
    m = tlrt.load(g)                                 # or tlrt.load("graph.json", "params.bin")
    y, = m.run(x)                                    # numpy in, numpy out (any admitted batch)
    report = tlrt.diff(g)                            # tlrt vs emitted module vs PyTorch
    src = tlrt.emit_pytorch(g)                       # a standalone nn.Module

Errors are tlrt.Error subclasses (BadInputError, UnsupportedError, OutOfMemoryError,
IOFailureError, InternalError) carrying tlrt's one-line message and its category (`kind`).
The runtime part needs only NumPy; tlrt.capture imports torch when called.
"""
from ._capture_api import capture
from ._errors import (BadInputError, Error, InternalError, IOFailureError, OutOfMemoryError,
                      UnsupportedError)
from ._graph import Graph
from ._model import Model, NodeProfile, best_isa, blas_info, get_threads, load, load_npy, set_threads
from ._tools import DiffReport, DiffStats, OutputDiff, diff, emit_pytorch, paths, tool_path

__version__ = "0.1.0"

__all__ = [
    "BadInputError", "DiffReport", "DiffStats", "Error", "Graph", "IOFailureError", "InternalError",
    "Model", "NodeProfile", "OutOfMemoryError", "OutputDiff", "UnsupportedError", "best_isa",
    "blas_info", "capture", "diff", "emit_pytorch", "get_threads", "load", "load_npy", "paths", "set_threads",
    "tool_path", "__version__",
]
