"""tlrt.Graph: a captured torchlean.ir.v1 graph held in memory (JSON text + params.bin bytes +
the example the capture ran on), and helpers that turn a graph argument into files."""
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

import numpy as np

from ._errors import BadInputError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Graph:
    """A graph in memory. `json_text` is the graph JSON; `params` the params.bin bytes (None when
    the payloads are inline); `example_input` / `example_outputs` what the capture ran PyTorch on
    (tlrt.diff compares with them); `method` how it was captured; `log` the capture's messages."""

    json_text: str
    params: Optional[bytes] = None
    example_input: Optional[np.ndarray] = None
    example_outputs: List[np.ndarray] = field(default_factory=list)
    method: str = ""
    log: List[str] = field(default_factory=list)

    @property
    def document(self) -> dict:
        """The graph JSON as a dict."""
        return json.loads(self.json_text)

    @property
    def input_shape(self) -> Tuple[int, ...]:
        doc = self.document
        return _input_shape(doc) or ()

    def save(self, directory: PathLike, *, example: bool = True) -> Path:
        """Write DIR/graph.json, DIR/params.bin (unless inline) and, with example=True and an
        example present, DIR/input.npy + DIR/output_<i>.npy (the capture script's --save-example
        layout, which tldiff picks up). Returns the graph.json path."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "graph.json").write_text(self.json_text)
        if self.params is not None:
            (d / "params.bin").write_bytes(self.params)
        if example and self.example_input is not None:
            np.save(d / "input.npy", np.ascontiguousarray(self.example_input))
            for i, y in enumerate(self.example_outputs):
                np.save(d / f"output_{i}.npy", np.ascontiguousarray(y, dtype=np.float32))
        return d / "graph.json"

    @classmethod
    def from_files(cls, graph_json: PathLike, params: Optional[PathLike] = None) -> "Graph":
        """Read a graph (and its params.bin) into memory; input.npy / output_*.npy next to the
        graph become the example."""
        g = Path(graph_json)
        try:
            text = g.read_text()
            blob = Path(params).read_bytes() if params is not None else None
        except OSError as e:
            raise BadInputError(f"{e.filename}: {e.strerror}") from None
        ex_in, ex_out = None, []
        if (g.parent / "input.npy").is_file() and (g.parent / "output_0.npy").is_file():
            ex_in = np.load(g.parent / "input.npy")
            i = 0
            while (g.parent / f"output_{i}.npy").is_file():
                ex_out.append(np.load(g.parent / f"output_{i}.npy"))
                i += 1
        return cls(text, blob, ex_in, ex_out, method="files")

    def load(self, **kwargs) -> "object":
        """tlrt.load(self, **kwargs): a Model running this graph."""
        from ._model import Model
        return Model(self, **kwargs)

    def __repr__(self) -> str:
        doc = self.document
        return (f"Graph({len(doc.get('nodes', []))} nodes, input {list(self.input_shape)}, "
                f"outputs {doc.get('output_ids')}, params {'inline' if self.params is None else f'{len(self.params)} bytes'})")


def _input_shape(doc) -> Optional[Tuple[int, ...]]:
    try:
        iid = doc["input_id"]
        for n in doc["nodes"]:
            if n.get("id") == iid:
                return tuple(int(d) for d in n["shape"])
    except (KeyError, TypeError, ValueError):
        pass
    return None


@contextlib.contextmanager
def as_files(graph, params=None, *, example: bool = False) -> Iterator[Tuple[str, Optional[str], Optional[str]]]:
    """Yield (graph_path, params_path, example_dir) for a Graph (written to a temporary
    directory, removed afterwards) or a path (used as it is)."""
    if isinstance(graph, Graph):
        if params is not None:
            raise BadInputError("params: a tlrt.Graph carries its own parameters")
        with tempfile.TemporaryDirectory(prefix="tlrt.") as d:
            gp = graph.save(d, example=example)
            has_ex = example and graph.example_input is not None and graph.example_outputs
            yield (str(gp), str(Path(d) / "params.bin") if graph.params is not None else None,
                   d if has_ex else None)
    elif isinstance(graph, (str, os.PathLike)):
        yield os.fspath(graph), (os.fspath(params) if params is not None else None), None
    else:
        raise BadInputError(f"graph: expected a path to graph.json or a tlrt.Graph, got {type(graph).__name__}")


def npy_bytes(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()
