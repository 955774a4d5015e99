"""Reference adapter: the original DRL code (a checkout of foolwood/DRL) on the same weights and
input as vtzoo, for ``benchmarks/bench.py --op drl --reference PATH``.

The original ``tvr.models.modeling.DRL`` is built from the same argparse fields its ``main.py``
passes, except that the OpenAI CLIP archive it would ``torch.jit.load`` from
``tvr/models/ViT-B-32.pt`` is a random CLIP state dict of the same shapes (the cost does not depend
on the values), and ``torch.cuda.is_available`` reports False while it is built, so CLIP stays
float32 on the CPU path. Both patches are undone right after. Its state dict is then converted
into the vtzoo operator, so both run the same weights. The timed call is the original's
``get_video_feat`` (per-frame CLIP features + temporal module), which ``embed_video`` computes as
``Embeddings.tokens``.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import torch

EMBEDDINGS_FIELD = "tokens"  # what the timed call returns, in vtzoo's terms


class _Archive:
    """Stands in for the loaded CLIP JIT archive: only ``eval`` and ``state_dict`` are used."""

    def __init__(self, state_dict: dict[str, torch.Tensor]):
        self._state_dict = state_dict

    def eval(self) -> "_Archive":
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state_dict


@contextmanager
def _random_clip_on_cpu(clip_state: dict[str, torch.Tensor]):
    jit_load, cuda_available = torch.jit.load, torch.cuda.is_available
    torch.jit.load = lambda *args, **kwargs: _Archive(clip_state)
    torch.cuda.is_available = lambda: False
    try:
        yield
    finally:
        torch.jit.load, torch.cuda.is_available = jit_load, cuda_available


def _import_original(path: str):
    checkout = str(Path(path).resolve())
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    from tvr.models.modeling import DRL  # noqa: E402  (the checkout's package)
    from tvr.models.module_clip import CLIP  # noqa: E402

    return DRL, CLIP


def _original_model(path: str, config) -> torch.nn.Module:
    DRL, CLIP = _import_original(path)
    sizes = config.clip
    if config.temporal_layers != 4 or sizes.vision_heads != sizes.vision_width // 64:
        raise SystemExit("the original hard-codes 4 temporal layers and width // 64 heads; this config differs")
    torch.manual_seed(0)
    clip = CLIP(sizes.embed_dim, sizes.image_resolution, sizes.vision_layers, sizes.vision_width,
                sizes.vision_patch_size, sizes.context_length, sizes.vocab_size, sizes.transformer_width,
                sizes.transformer_heads, sizes.transformer_layers)
    args = Namespace(interaction=config.interaction, agg_module=config.agg_module,
                     base_encoder=f"ViT-B/{sizes.vision_patch_size}", wti_arch=config.wti_arch, cdcr=config.cdcr,
                     cdcr_alpha1=config.cdcr_alpha1, cdcr_alpha2=config.cdcr_alpha2, cdcr_lambda=config.cdcr_lambda,
                     max_words=config.max_words, max_frames=config.max_frames, world_size=1, local_rank=0,
                     device="cpu")
    if config.interaction == "xti":
        args.cross_num_hidden_layers = config.cross_layers
    with _random_clip_on_cpu(clip.state_dict()):
        model = DRL(args)
    return model.float().eval()


def build(path: str, op, clip: dict[str, torch.Tensor]) -> tuple[Callable[[], Any], int]:
    """The original's ``get_video_feat`` on ``clip`` ({"video": (B, T, 3, H, W), "video_mask": (B, T)}),
    with vtzoo loaded alike."""
    from vtzoo.registry.weights import load_state_dict_strict

    config = op.model.config
    original = _original_model(path, config)
    converted = op.model.converters()["original"](original.state_dict(), config)
    load_state_dict_strict(op.model, converted, origin=f"original DRL at {path}")
    video, mask = clip["video"], clip["video_mask"]

    def run() -> torch.Tensor:
        return original.get_video_feat(video, mask)  # (B, T, D), like Embeddings.tokens

    return run, sum(p.numel() for p in original.parameters())
