"""Golden parity runner for the S3D backbone (family ``s3d``).

Builds :class:`S3D` from the case's ``constructor`` block, converts the original state dict
(float16 in the fixture, cast to float32 as the reference was), runs the case's ``video`` input
and returns every output: the two pooled features and the intermediate maps the case recorded
(``debug_<stage>`` = that stage's output, ``debug_mixed_5c_map`` = the last block before pooling).
"""

from __future__ import annotations

from typing import Any

import torch

from vtzoo.operators.backbones.s3d.convert import convert_original_state_dict
from vtzoo.operators.backbones.s3d.model import S3D, S3DConfig
from vtzoo.registry.golden import GoldenCase, GoldenError, GoldenRun, Skipped, as_float32
from vtzoo.registry.weights import load_state_dict_strict

# The case README's hint: the float64 network differs from the float32 reference by 3.6e-5 on
# mixed_5c (values up to 3.1), so a float32 port with other conv kernels lands near that.
TOLERANCES = {"mixed_5c": 1e-4, "video_embedding": 1e-4}


def config_from_case(case: GoldenCase) -> S3DConfig:
    ctor: dict[str, Any] = case.config.get("constructor", {})
    if ctor.get("gating", True) is False:
        # The original ignores the flag (its gating module shadows it); say so rather than guess.
        raise GoldenError(f"{case.path}: gating=False is not a configuration the original can run")
    return S3DConfig(
        embedding_dim=int(ctor.get("num_classes", 512)),
        space_to_depth=bool(ctor.get("space_to_depth", True)),
    )


def build_from_case(case: GoldenCase) -> S3D:
    model = S3D(config_from_case(case))
    state_dict = convert_original_state_dict(as_float32(case.original_state_dict()))
    load_state_dict_strict(model, state_dict, str(case.path))
    return model.eval()


def run_case(case: GoldenCase) -> GoldenRun:
    model = build_from_case(case)
    inputs = case.inputs()
    if "video" not in inputs:
        raise GoldenError(f"{case.path}: inputs.safetensors has no 'video' tensor")
    wanted = set(case.outputs())
    outputs: dict[str, Any] = {}
    with torch.inference_mode():
        maps = {}
        for name, x in model.stages(inputs["video"].float()):
            maps[name] = x
        pooled = maps["mixed_5c"].mean(dim=(2, 3, 4))
        outputs["mixed_5c"] = pooled
        outputs["video_embedding"] = model.fc(pooled)
        outputs["debug_mixed_5c_map"] = maps["mixed_5c"]
        for name in wanted:
            if name.startswith("debug_") and name not in outputs:
                stage = name.removeprefix("debug_")
                outputs[name] = maps[stage] if stage in maps else Skipped(f"no S3D stage named {stage!r}")
    return GoldenRun(outputs=outputs, tolerances=TOLERANCES)
