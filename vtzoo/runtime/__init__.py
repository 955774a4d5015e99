"""How an operator's heavy towers run: eager PyTorch, ``torch.compile``, or OpenVINO.

Operator options (``vtzoo.create(..., backend="openvino", compile=True)``):

* ``backend``: ``"torch"`` (default) or ``"openvino"`` (extra ``vtzoo[openvino]``), for the
  networks that offer it (:meth:`Acceleratable.accelerate`); the OpenVINO model is converted from
  the same PyTorch module and cached on disk (:mod:`vtzoo.runtime.openvino`).
* ``compile``: wrap the same towers in ``torch.compile`` (the first call of each input shape
  compiles, tens of seconds on a CPU).

Families say which of their networks are worth it by implementing ``accelerate(runner_factory)``:
they hand the tower module and an example input to the factory and call what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from vtzoo.errors import ConfigError, did_you_mean

BACKENDS = ("torch", "openvino")


@dataclass(frozen=True)
class RuntimeOptions:
    backend: str = "torch"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}.{did_you_mean(self.backend, BACKENDS)}")
        if self.compile and self.backend != "torch":
            raise ConfigError("compile=True applies to backend='torch' (OpenVINO compiles its own model)")

    @property
    def eager(self) -> bool:
        return self.backend == "torch" and not self.compile


class RunnerFactory:
    """Turns a tower (module + example inputs) into the callable that runs it."""

    def __init__(self, options: RuntimeOptions, precision: str):
        self.options, self.precision = options, precision

    def __call__(self, name: str, module: torch.nn.Module, example: Sequence[torch.Tensor],
                 dynamic_axes: dict[int, Sequence[int]] | None = None) -> Callable[..., Any]:
        """``module(*inputs)`` as the chosen backend runs it. ``dynamic_axes``: input index ->
        axes whose size may change between calls (the batch axis by default)."""
        if self.options.backend == "openvino":
            from vtzoo.runtime.openvino import OpenVINOTower

            return OpenVINOTower(name, module, example, self.precision, dynamic_axes)
        if self.options.compile:
            return torch.compile(module, dynamic=False)
        return module


# The towers each operator runs through a non-default runtime (what backend= and compile= change).
ACCELERATED_TOWERS = {
    "clip4clip": "the CLIP image tower (2D patches)",
    "drl": "the CLIP image tower",
    "s3d": "S3D",
    "videoclip": "the S3D feature extractor",
    "coot": "the S3D feature extractor",
    "clip_frames": "the CLIP image tower (MDMMT's CLIP expert)",
    "movinet": "the single-frame stream step (stream variants)",
}


def runtime_options(operator_name: str, backend: str = "torch", compile: bool = False) -> RuntimeOptions:
    """Validated options for ``operator_name``; an error names the operators that offer them."""
    options = RuntimeOptions(backend, bool(compile))
    if options.eager:
        return options
    if operator_name not in ACCELERATED_TOWERS:
        what = f"backend={options.backend!r}" if options.backend != "torch" else "compile=True"
        raise ConfigError(
            f"{what} is not available for operator {operator_name!r} (it is for: {', '.join(ACCELERATED_TOWERS)})"
        )
    if options.backend == "openvino":
        from vtzoo.runtime.openvino import require_openvino

        require_openvino()
    return options


def accelerate(network: torch.nn.Module, options: RuntimeOptions, precision: str) -> None:
    """Hand ``network``'s towers to the runtime of ``options`` (if it has any and they are not eager)."""
    if not options.eager and hasattr(network, "accelerate"):
        network.accelerate(RunnerFactory(options, precision))
