"""The benchmark zoo: the models of tests/zoo/ plus three larger bench-only models (bench/zoo_large.py)
("base"), the realistic networks of bench/zoo_real.py ("real", compare.py --zoo real), and their capture for all three runtimes from ONE module instance (so the weights are identical):

  DIR/graph.json + DIR/params.bin   scripts/export_torchlean_graph.py (its Python API), batch 1
  DIR/b64/graph.json + params.bin   the same at batch 64 (where tlrt cannot re-batch a graph)
  DIR/model.onnx                    torch.onnx.export(dynamo=False), dynamic batch axis
  DIR/state_dict.pt                 the module's weights (memory measurements rebuild the module)
  DIR/spec.json                     name, file, class, example shape
"""

import importlib.util
import json
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPSET = 17
SEED = 0


@dataclass
class Spec:
    name: str
    file: str  # relative to the repository root
    ctor: str
    example_shape: tuple
    kwargs: dict = field(default_factory=dict)
    size: str = "small"  # "small" (latency targets) or "large" (GEMM efficiency)
    input_low: float = None  # uniform input range when set, else standard normal
    input_high: float = None
    zoo: str = "base"  # "base" (tests/zoo + zoo_large) or "real" (bench/zoo_real.py)
    batches: tuple = (1, 64)  # the batches compare.py measures by default
    allow_rounding: bool = False  # capture with --allow-rounding (rounded lowerings admitted)
    extra_batches: tuple = (64,)  # also captured at these batches (where tlrt cannot re-batch)
    quick_batches: tuple = None  # compare.py --quick measures these (default: batches[:2])


_SPECS = [
    Spec("mlp", "tests/zoo/mlp.py", "MLP", (1, 8)),
    Spec("lenet", "tests/zoo/lenet.py", "LeNet", (1, 1, 12, 12)),
    Spec("resblock", "tests/zoo/resblock.py", "ResNetTiny", (1, 3, 16, 16)),
    Spec("dwconv", "tests/zoo/dwconv.py", "DWBlock", (1, 6, 8, 8), allow_rounding=True),
    Spec("transformer", "tests/zoo/transformer.py", "EncoderLayer", (1, 8, 16), allow_rounding=True),
    Spec("two_outputs", "tests/zoo/two_outputs.py", "TwoHeads", (1, 6), allow_rounding=True),
    # larger layers, for the ">= 85% of the sgemm peak" question
    Spec("mlp_large", "bench/zoo_large.py", "MLPLarge", (1, 1024), size="large"),
    Spec("cnn_large", "bench/zoo_large.py", "CNNLarge", (1, 32, 32, 32), size="large"),
    Spec(
        "transformer_large",
        "tests/zoo/transformer.py",
        "EncoderLayer",
        (1, 64, 256),
        kwargs={"d_model": 256, "heads": 4, "d_ff": 1024},
        size="large",
        allow_rounding=True,
    ),
]

# The realistic zoo (bench/zoo_real.py). Batches: 1 and 16..1024 as far as a full run of the zoo
# fits in ~10 minutes on 2 cores (the big image models stop at 16 or 64).
_R = "bench/zoo_real.py"
_MLP_B = (1, 16, 64, 256, 1024)
_SPECS += [
    Spec("mlp_mnist", _R, "MLP", (1, 784), zoo="real", batches=_MLP_B, extra_batches=()),
    Spec(
        "mlp_acasxu",
        _R,
        "MLP",
        (1, 5),
        kwargs={"d_in": 5, "hidden": [50] * 6, "d_out": 5},
        zoo="real",
        batches=_MLP_B,
        extra_batches=(),
    ),
    Spec("cifar_cnn", _R, "CifarCNN", (1, 3, 32, 32), zoo="real", batches=(1, 16, 64, 256), extra_batches=()),
    Spec("cifar_resnet20", _R, "CifarResNet20", (1, 3, 32, 32), zoo="real", batches=(1, 16, 64, 256), extra_batches=()),
    Spec("mobilenetv2_96", _R, "MobileNetV2", (1, 3, 96, 96), zoo="real", batches=(1, 16, 64), extra_batches=()),
    Spec("mobilenetv2_224", _R, "MobileNetV2", (1, 3, 224, 224), zoo="real", batches=(1, 16), extra_batches=(),
         quick_batches=(1,)),
    Spec("resnet18_64", _R, "ResNet18", (1, 3, 64, 64), zoo="real", batches=(1, 16, 64), extra_batches=()),
    Spec(
        "resnet18_224",
        _R,
        "ResNet18",
        (1, 3, 224, 224),
        zoo="real",
        batches=(1, 16),
        extra_batches=(),
        quick_batches=(1,),
    ),
    Spec(
        "vit_tiny_224",
        _R,
        "ViTTiny",
        (1, 3, 224, 224),
        zoo="real",
        batches=(1, 16),
        allow_rounding=True,
        extra_batches=(),
        quick_batches=(1,),
    ),
]


def specs(which="base"):
    """The zoo: "base" (tests/zoo + zoo_large), "real" (bench/zoo_real.py) or "all"."""
    return [s for s in _SPECS if which == "all" or s.zoo == which]


def get(name):
    for s in _SPECS:
        if s.name == name:
            return s
    raise KeyError(name)


def _import_file(path, modname):
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    return mod


_exporter = None


def exporter():
    global _exporter
    if _exporter is None:
        _exporter = _import_file(str(ROOT / "scripts" / "export_torchlean_graph.py"), "tl_export_graph")
    return _exporter


def build_module(spec):
    import torch

    mod = _import_file(str(ROOT / spec.file), "tl_bench_zoo_" + spec.name)
    torch.manual_seed(SEED)
    m = getattr(mod, spec.ctor)(**spec.kwargs)
    return m.float().eval()


def load_module(spec, model_dir):
    """The same module with the captured weights (state_dict.pt written by capture)."""
    import torch

    m = build_module(spec)
    m.load_state_dict(torch.load(Path(model_dir) / "state_dict.pt", weights_only=True))
    return m.eval()


def capture(spec, model_dir, onnx=True, extra_batches=None):
    """Capture spec into model_dir for tlrt (graph.json + params.bin), ORT (model.onnx) and
    PyTorch (state_dict.pt). Returns the module (eval mode). The tlrt graph is also captured at
    each of extra_batches into model_dir/b<batch>/ (used where the runtime cannot re-batch the
    batch-1 graph); ORT and PyTorch take any batch."""
    import torch

    if extra_batches is None:
        extra_batches = spec.extra_batches
    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("b[0-9]*"):  # captures at other batches from an earlier run: maybe stale weights
        if old.is_dir():
            shutil.rmtree(old)
    m = build_module(spec)
    gen = torch.Generator().manual_seed(SEED)
    example = torch.randn(spec.example_shape, generator=gen)
    exporter().export_torchlean_graph(
        m,
        (example,),
        str(d / "graph.json"),
        str(d / "params.bin"),
        source_file=str(ROOT / spec.file),
        log=None,
        allow_rounding=spec.allow_rounding,
    )
    for b in extra_batches:
        capture_batch(spec, m, d, b, gen)
    torch.save(m.state_dict(), d / "state_dict.pt")
    if onnx:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = m(example)
            n_out = len(out) if isinstance(out, (tuple, list)) else 1
            names = ["y%d" % i for i in range(n_out)]
            axes = {"x": {0: "batch"}}
            axes.update({n: {0: "batch"} for n in names})
            torch.onnx.export(
                m,
                (example,),
                str(d / "model.onnx"),
                input_names=["x"],
                output_names=names,
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    (d / "spec.json").write_text(
        json.dumps(
            {
                "name": spec.name,
                "file": spec.file,
                "ctor": spec.ctor,
                "kwargs": spec.kwargs,
                "example_shape": list(spec.example_shape),
            }
        )
    )
    return m


def capture_batch(spec, module, model_dir, batch, gen=None):
    """The tlrt graph of module captured at `batch` into model_dir/b<batch>/ (for graphs the
    runtime cannot re-batch, e.g. a class token expanded over the batch and concatenated)."""
    import torch

    if gen is None:
        gen = torch.Generator().manual_seed(SEED + batch)
    ex_b = torch.randn((batch,) + tuple(spec.example_shape[1:]), generator=gen)
    alt = Path(model_dir) / ("b%d" % batch)
    alt.mkdir(parents=True, exist_ok=True)
    exporter().export_torchlean_graph(
        module,
        (ex_b,),
        str(alt / "graph.json"),
        str(alt / "params.bin"),
        source_file=str(ROOT / spec.file),
        log=None,
        allow_rounding=spec.allow_rounding,
    )
    return alt
