"""Reference adapter: the original CLIP4Clip code (a checkout of ArrowLuo/CLIP4Clip) on the
same weights and input as vtzoo, for ``benchmarks/bench.py --op clip4clip --reference PATH``.

The original is built exactly as its training script builds it, except that the OpenAI CLIP
state dict it would read from ``modules/ViT-B-32.pt`` is a random one of the same shapes (the cost
does not depend on the values). Its state dict is then converted into the vtzoo operator, so both
run the same weights. Only modules that its ``file_utils`` imports for downloads are stubbed.
"""

from __future__ import annotations

import sys
import types
from argparse import Namespace
from pathlib import Path
from typing import Any, Callable

import torch



def _stub_download_modules() -> None:
    for name in ("boto3", "botocore", "botocore.exceptions", "requests"):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.ClientError = Exception  # botocore.exceptions.ClientError
            sys.modules[name] = module


def _import_original(path: str):
    checkout = str(Path(path).resolve())
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    _stub_download_modules()
    from modules.modeling import CLIP4Clip  # noqa: E402  (the checkout's package)
    from modules.module_clip import CLIP  # noqa: E402

    return CLIP4Clip, CLIP


def _original_model(path: str, config) -> torch.nn.Module:
    CLIP4Clip, CLIP = _import_original(path)
    torch.manual_seed(0)
    sizes = config.clip
    clip = CLIP(sizes.embed_dim, sizes.image_resolution, sizes.vision_layers, sizes.vision_width,
                sizes.vision_patch_size, sizes.context_length, sizes.vocab_size, sizes.transformer_width,
                sizes.transformer_heads, sizes.transformer_layers)
    clip_state = clip.state_dict()
    CLIP.get_config = staticmethod(lambda pretrained_clip_name="ViT-B/32": clip_state)
    task = Namespace(max_words=config.max_words, max_frames=config.max_frames, loose_type=config.loose,
                     linear_patch=config.linear_patch, sim_header=config.sim_header,
                     cross_num_hidden_layers=config.cross_num_hidden_layers, pretrained_clip_name="ViT-B/32",
                     local_rank=0, rank=0, world_size=1)
    cross_dir = str(Path(path).resolve() / "modules" / "cross-base")
    model = CLIP4Clip.from_pretrained(cross_dir, state_dict=None, task_config=task)
    return model.float().eval()


def build(path: str, op, clip: torch.Tensor) -> tuple[Callable[[], Any], int]:
    """The original's video embedding on ``clip`` (B, T, 3, H, W), with vtzoo loaded alike."""
    from vtzoo.registry.weights import load_state_dict_strict

    config = op.model.config
    original = _original_model(path, config)
    converted = op.model.converters()["original"](original.state_dict(), config)
    load_state_dict_strict(op.model, converted, origin=f"original CLIP4Clip at {path}")
    batch, frames = clip.shape[:2]
    video = clip.view(batch, 1, frames, 1, *clip.shape[2:])
    mask = torch.ones(batch, 1, frames, dtype=torch.long)

    def run() -> torch.Tensor:
        visual = original.get_visual_output(video, mask, shaped=False)
        visual = visual / visual.norm(dim=-1, keepdim=True)
        pooled = original._mean_pooling_for_similarity_visual(visual, mask.view(batch, frames))
        return pooled / pooled.norm(dim=-1, keepdim=True)

    return run, sum(p.numel() for p in original.parameters())
