"""Reference adapter: the original Frozen in Time code (a checkout of m-bain/frozen-in-time) on
the same weights and input as vtzoo, for ``benchmarks/bench.py --op frozen_in_time --reference PATH``.

The original ``FrozenInTime`` is built as its configs build it (SpaceTimeTransformer
``base_patch16_224``, DistilBERT text tower, ``minimal`` projection), with random weights:
timm's ViT-B/16 is created with ``pretrained=False``, and ``AutoModel.from_pretrained`` (which
would download ``distilbert-base-uncased``) returns a ``DistilBertModel`` of that model's default
config with random weights. ``time_init='rand'`` gives the time attention random weights too
(``'zeros'`` would make it a constant, leaving it out of the accuracy check; the cost does not
depend on the values). Its state dict is then converted into the vtzoo operator, so both run the
same weights. Only the modules the checkout imports but the video path never uses (``cv2``,
``humanize``, ``psutil``) are stubbed, and only when they are not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import types
from pathlib import Path
from typing import Any, Callable

import torch



def _stub_unused_modules() -> None:
    # import transformers' DistilBERT first: it must see the real psutil (if any), never a stub
    import transformers.models.distilbert.modeling_distilbert  # noqa: F401

    for name in ("cv2", "humanize", "psutil"):
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = types.ModuleType(name)


def _import_original(path: str):
    checkout = str(Path(path).resolve())
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    _stub_unused_modules()
    import model.model as original_module  # noqa: E402  (the checkout's package)

    return original_module


def _original_model(path: str, config) -> torch.nn.Module:
    from transformers import DistilBertConfig, DistilBertModel

    original_module = _import_original(path)

    class RandomDistilBert:  # stands in for transformers.AutoModel inside the checkout
        @staticmethod
        def from_pretrained(name: str) -> DistilBertModel:
            return DistilBertModel(DistilBertConfig(
                vocab_size=config.text_vocab_size, dim=config.text_dim, n_layers=config.text_layers,
                n_heads=config.text_heads, hidden_dim=config.text_hidden_dim,
                max_position_embeddings=config.text_max_position_embeddings, activation=config.text_activation,
                pad_token_id=config.text_pad_token_id, sinusoidal_pos_embds=False))

    original_module.AutoModel = RandomDistilBert
    video_params = dict(model="SpaceTimeTransformer", arch_config="base_patch16_224", num_frames=config.num_frames,
                        pretrained=False, time_init="rand")
    text_params = dict(model=config.text_model, pretrained=True, input="text")
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its attention style
        model = original_module.FrozenInTime(video_params, text_params, projection_dim=config.projection_dim,
                                             projection=config.projection, load_temporal_fix=config.load_temporal_fix)
    return model.float().eval()


def build(path: str, op, clip: torch.Tensor) -> tuple[Callable[[], Any], int]:
    """The original's video embedding (``compute_video``) on ``clip`` (B, F, 3, H, W), with vtzoo
    loaded alike."""
    from vtzoo.registry.weights import load_state_dict_strict

    config = op.model.config
    original = _original_model(path, config)
    converted = op.model.converters()["original"](original.state_dict(), config)
    load_state_dict_strict(op.model, converted, origin=f"original Frozen in Time at {path}")

    def run() -> torch.Tensor:
        return original.compute_video(clip)

    return run, sum(p.numel() for p in original.parameters())
