"""ONNX export of a trained model, for alert brokers and other non-Python consumers.

``skysift export RUN_DIR --format onnx [--out model.onnx]`` writes

- ``model.onnx``: the network plus the calibration, with inputs exactly as the task's dataset yields
  them (one tensor, or one per key when the network takes a dict), a dynamic batch axis, and two
  outputs: ``logits`` ``(B, K)`` (uncalibrated) and ``probabilities`` ``(B, K)``
  = softmax(logits / temperature + bias), the calibrated probabilities ``skysift predict`` reports
  (without test-time augmentation);
- ``model.onnx.json``: the sidecar a consumer needs: class names and their column order, the
  temperature, biases and decision threshold, the input names, shapes and dtypes, and the
  preprocessing (the task's statistics and model parameters, with a description of what turns raw
  data into the inputs).

The preprocessing itself (detrending, resizing, normalisation ...) stays in Python: it is written
with numpy/wotan/PIL, which ONNX cannot express. A consumer runs ``task.dataset(...)`` (see
:func:`onnx_inputs`) or reimplements it from the sidecar's description.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .core.data import TaskData
from .core.io import atomic_path, write_json
from .errors import ConfigError, SkysiftError

FORMATS = ("onnx",)
DEFAULT_OPSET = 17


class _Calibrated:
    """Built lazily (torch imported on use): wraps a network that takes a tensor or a dict of
    tensors into one that takes positional tensors and returns (logits, calibrated probabilities)."""

    @staticmethod
    def build(net, keys: list[str] | None, temperature: float, bias: list[float]):
        import torch

        class Calibrated(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net
                self.keys = keys
                self.register_buffer("inv_temperature", torch.tensor(1.0 / temperature, dtype=torch.float32))
                self.register_buffer("bias", torch.tensor(bias, dtype=torch.float32))

            def forward(self, *inputs):
                x = dict(zip(self.keys, inputs)) if self.keys is not None else inputs[0]
                logits = self.net(x).float()
                proba = torch.softmax(logits * self.inv_temperature + self.bias, dim=1)
                return logits, proba

        return Calibrated()


def onnx_inputs(model, data: TaskData, n: int | None = None) -> dict[str, np.ndarray]:
    """The ONNX inputs for ``data`` (first ``n`` objects): what ``task.dataset`` yields, collated,
    as ``{input name: array}``. This is the preprocessing the sidecar describes."""
    import torch
    from torch.utils.data import DataLoader

    if n is not None:
        data = data.subset(np.arange(min(n, len(data))))
    ds = model.task.dataset(data, model.stats, model.data_params, train=False)
    batch, _ = next(iter(DataLoader(ds, batch_size=len(ds), shuffle=False, collate_fn=model.task.collate_fn)))
    if isinstance(batch, dict):
        return {k: v.numpy() for k, v in batch.items()}
    if not isinstance(batch, torch.Tensor):
        raise SkysiftError(f"task {model.task.name!r} yields inputs of type {type(batch).__name__}; "
                           "ONNX export needs a tensor or a dict of tensors")
    return {"input": batch.numpy()}


def _sample_data(model) -> TaskData:
    """A few objects to trace the network with: the task's request example, else simulated data."""
    task = model.task
    example = task.request_example()
    if example is not None:
        return model.parse_request(example)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = task.simulate(Path(tmp) / "sample", n=8, seed=0)
        data = model.read(path, labelled=False)
        return data.subset(np.arange(len(data)))  # read lazily held inputs before the folder goes


def export_onnx(run_dir: str | Path, out: str | Path | None = None, *, opset: int = DEFAULT_OPSET,
                sample: TaskData | None = None, check: bool = True) -> Path:
    """Export the network of ``run_dir`` (with its calibration) to ONNX; returns the ``.onnx`` path.

    ``sample``: objects to trace with (default: the task's request example). With ``check``, the
    exported graph is run with onnxruntime on the sample and compared with torch (max abs
    difference of the probabilities stored in the sidecar; an error above 1e-4).
    """
    import torch

    from .core.model import load

    model = load(run_dir)
    if not model.backend.exportable:
        raise ConfigError(f"{run_dir}: model {model.card['model']['name']!r} is an estimator, not a "
                          "network; ONNX export covers torch models")
    out = Path(out) if out is not None else Path(run_dir) / "model.onnx"
    data = sample if sample is not None else _sample_data(model)
    inputs = onnx_inputs(model, data, n=4)
    names = list(inputs)
    keys = None if names == ["input"] else names
    net = model.net.cpu().float().eval()
    wrapped = _Calibrated.build(net, keys, model.temperature, model.bias).eval()
    args = tuple(torch.from_numpy(inputs[k]) for k in names)
    with torch.no_grad():
        ref_logits, ref_proba = wrapped(*args)
    with atomic_path(out) as tmp:
        # the TorchScript-based exporter: stable for these convolutional/attention networks and
        # needs no onnxscript; the batch axis is left dynamic
        torch.onnx.export(wrapped, args, str(tmp), input_names=names, output_names=["logits", "probabilities"],
                          dynamic_axes={**{k: _dynamic_axes(model.task, inputs[k]) for k in names},
                                        "logits": {0: "batch"}, "probabilities": {0: "batch"}},
                          opset_version=opset, dynamo=False)
    import onnxruntime as ort

    # the exporter drops inputs the network never reads (e.g. a sequence model's raw times): the
    # sidecar lists the graph's inputs, and run_onnx feeds only those
    graph_inputs = {i.name for i in ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_inputs()}
    names = [k for k in names if k in graph_inputs]
    max_diff = None
    if check:
        got = run_onnx(out, inputs)
        max_diff = float(np.abs(got["probabilities"] - ref_proba.numpy()).max())
        if max_diff > 1e-4:
            raise SkysiftError(f"{out}: onnxruntime and torch disagree by {max_diff:.2e} in probability")
    write_json(sidecar_path(out), {
        "format": "onnx", "opset": opset, "skysift_version": __version__,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source_run": str(Path(run_dir).resolve()),
        "task": model.task.name, "model": model.card["model"]["name"],
        "class_names": model.class_names,
        "calibration": {"temperature": model.temperature, "bias": model.bias, "threshold": model.threshold,
                        "formula": "probabilities = softmax(logits / temperature + bias)"},
        "inputs": [{"name": k, "dtype": str(inputs[k].dtype),
                    "shape": [_dynamic_axes(model.task, inputs[k]).get(i, n) for i, n in enumerate(inputs[k].shape)]}
                   for k in names],
        "outputs": [{"name": "logits", "shape": ["batch", len(model.class_names)]},
                    {"name": "probabilities", "shape": ["batch", len(model.class_names)]}],
        "preprocessing": {
            "description": (f"inputs are what skysift's {model.task.name!r} task yields from "
                            "Task.dataset(data, stats, params, train=False) (skysift.export.onnx_inputs); "
                            + (model.task.describe_input() or "")),
            "stats": model.stats, "params": model.data_params,
        },
        "check": {"max_abs_diff_vs_torch": max_diff, "n_objects": int(len(next(iter(inputs.values()))))},
    })
    return out


def _dynamic_axes(task, array: np.ndarray) -> dict[int, str]:
    """The batch axis; and every other axis too when the task collates its own batches (it pads
    sequences to the longest in the batch, so their length varies from batch to batch)."""
    if task.collate_fn is None:
        return {0: "batch"}
    return {0: "batch", **{i: f"axis{i}" for i in range(1, array.ndim)}}


def sidecar_path(onnx_path: str | Path) -> Path:
    p = Path(onnx_path)
    return p.with_name(p.name + ".json")


def run_onnx(path: str | Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an exported model with onnxruntime on the CPU: ``{"logits": ..., "probabilities": ...}``.
    ``inputs`` may hold more than the graph reads (what ``onnx_inputs`` gives); the rest is ignored."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = [i.name for i in sess.get_inputs()]
    missing = [k for k in wanted if k not in inputs]
    if missing:
        raise SkysiftError(f"{path}: inputs {missing} are missing (the model reads {wanted})")
    outputs = sess.run(None, {k: np.ascontiguousarray(inputs[k]) for k in wanted})
    return {o.name: v for o, v in zip(sess.get_outputs(), outputs)}


def register(app: Any) -> None:
    import typer

    @app.command()
    def export(run_dir: Path = typer.Argument(..., help="a trained run directory"),
               format: str = typer.Option("onnx", "--format", help="export format: onnx"),
               out: Path = typer.Option(None, "--out", help="file to write (default RUN_DIR/model.onnx)"),
               opset: int = typer.Option(DEFAULT_OPSET, "--opset", help="ONNX opset version")):
        """Export a trained network (with its calibration) to ONNX + a JSON sidecar."""
        if format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
        if not 11 <= opset <= 23:
            raise ConfigError(f"--opset must be in 11..23, got {opset}")
        path = export_onnx(run_dir, out, opset=opset)
        typer.echo(f"wrote {path} and {sidecar_path(path)}")
