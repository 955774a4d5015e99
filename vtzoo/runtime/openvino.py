"""OpenVINO runtime for PyTorch towers: converted once (``openvino.convert_model``), cached on disk.

The cache key is the tower's name, a sha256 of its weights, the example input shapes and dtypes
and the OpenVINO version, so a model with other weights or another input size never reuses a
stale conversion. The cache folder is ``$VTZOO_OPENVINO_CACHE`` or ``~/.cache/vtzoo/openvino``.

OpenVINO picks its own inference precision: "fp32" asks for f32 (``INFERENCE_PRECISION_HINT``),
"bf16" for bf16 (where the CPU computes it natively), like the torch paths.
"""

from __future__ import annotations

import copy
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vtzoo.errors import ConfigError

CACHE_ENV_VAR = "VTZOO_OPENVINO_CACHE"
_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def require_openvino():
    try:
        import openvino
    except ImportError as exc:
        raise ConfigError(
            "backend='openvino' needs the OpenVINO runtime: pip install 'vtzoo[openvino]'"
        ) from exc
    return openvino


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "vtzoo" / "openvino")


def weights_digest(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_key(name: str, module: torch.nn.Module, example: Sequence[torch.Tensor], version: str) -> str:
    shapes = ";".join(f"{tuple(t.shape)}:{t.dtype}" for t in example)
    text = f"{name}|{weights_digest(module)}|{shapes}|{version}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class OpenVINOTower:
    """Calls an OpenVINO-compiled copy of ``module``: tensors in, tensors (or a tuple) out."""

    def __init__(self, name: str, module: torch.nn.Module, example: Sequence[torch.Tensor], precision: str,
                 dynamic_axes: dict[int, Sequence[int]] | None = None):
        ov = self._ov = require_openvino()
        example = tuple(t.float() if t.is_floating_point() else t for t in example)
        path = cache_dir() / f"{name}-{cache_key(name, module, example, ov.__version__)}.xml"
        self.path, self.converted = path, False
        if not path.is_file():
            self._convert(ov, module, example, dynamic_axes, path)
            self.converted = True
        core = ov.Core()
        model = core.read_model(path)
        self.inference_precision = _HINTS[precision]
        try:
            self.compiled = core.compile_model(model, "CPU", self._config(self.inference_precision))
        except RuntimeError as exc:  # a layer the CPU plugin has no low-precision kernel for
            if self.inference_precision == "f32":
                raise
            warnings.warn(f"OpenVINO cannot compile {name} in {precision} on this CPU ({_last_line(exc)}); "
                          "running it in f32", RuntimeWarning, stacklevel=2)
            self.inference_precision = "f32"
            self.compiled = core.compile_model(model, "CPU", self._config("f32"))
        self.request = self.compiled.create_infer_request()

    @staticmethod
    def _config(hint: str) -> dict[str, Any]:
        return {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": torch.get_num_threads()}

    @staticmethod
    def _convert(ov, module: torch.nn.Module, example, dynamic_axes, path: Path) -> None:
        axes = dynamic_axes if dynamic_axes is not None else {0: (0,)}
        shapes = []
        for index, tensor in enumerate(example):
            shape = [-1 if dim in axes.get(index, ()) else size for dim, size in enumerate(tensor.shape)]
            shapes.append(ov.PartialShape(shape))
        module = copy.deepcopy(module).float().eval()  # the float32 weights, whatever the torch path uses
        for tensor in [*module.parameters(), *module.buffers()]:
            tensor.data = tensor.data.contiguous()  # a channels_last_3d torch path is not converted
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants
            warnings.simplefilter("ignore", FutureWarning)  # the converter traces with torch.jit
            model = ov.convert_model(module, example_input=example, input=shapes)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp.xml")
        ov.save_model(model, partial, compress_to_fp16=False)  # keep the weights exact
        partial.with_suffix(".bin").replace(path.with_suffix(".bin"))
        partial.replace(path)

    def __call__(self, *inputs: torch.Tensor) -> Any:
        for port, tensor in zip(self.compiled.inputs, inputs):
            if not port.get_partial_shape().compatible(self._ov.PartialShape(list(tensor.shape))):
                raise ValueError(f"{self.path.name}: input of shape {tuple(tensor.shape)} does not fit the converted "
                                 f"model's {port.get_partial_shape()}")
        # (np.ascontiguousarray would turn a 0-d input into shape (1,))
        arrays = [(t.detach().float() if t.is_floating_point() else t.detach()).cpu().contiguous().numpy() for t in inputs]
        results = self.request.infer(arrays)
        outputs = [torch.from_numpy(np.array(results[port])) for port in self.compiled.outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:160] if lines else type(exc).__name__
