"""Reference adapter: the original VideoCLIP code (a checkout of facebookresearch/fairseq, folder
``examples/MMPT``) on the same weights and input as vtzoo, for
``benchmarks/bench.py --op videoclip --reference PATH``.

The original ``MMFusionSeparate`` is built as ``MMPTModel.from_pretrained`` builds it, from the
config of MMPT's README demo (``projects/retri/videoclip/how2.yaml``, read with PyYAML: the
``model`` and ``dataset`` blocks are all ``MMFusion.__init__`` reads), except that the
``bert-base-uncased`` it would download is a random BERT of the same sizes (the vtzoo variant's):
``AutoConfig.from_pretrained`` returns that config and ``from_pretrained`` of the two towers
builds them from it, seeded. Its state dict is then converted into the vtzoo operator (the
converter drops the poolers and position-id buffers), so both run the same weights.

MMPT's towers subclass ``transformers.modeling_bert`` classes of transformers 3.x (its README asks
for 3.4.0); transformers 4 and later cannot run them (``BertLayer`` no longer takes the
positional head mask that ``MultiLayerAttentionMaskBertEncoder`` passes). So the original runs on
the library it was written for: an unpacked ``transformers==3.4.0`` wheel (a folder holding its
``transformers/`` package, default ``PATH/../transformers-3.4.0``, or ``$MMPT_TRANSFORMERS``),
imported under a private package name, its ``modeling_bert`` standing in for
``transformers.modeling_bert`` only while MMPT's modules are imported; the installed
transformers (vtzoo's) is untouched. ``mmpt`` and ``mmpt.models`` are registered as bare
packages so that their ``__init__`` files (the fairseq task wrappers) do not run.

Workload: the video tower on precomputed per-second S3D features, ``max_video_len`` = 32 seconds
per video (the original's aligner pads every video to 32), 32 videos per call (vtzoo's batch
size; the S3D in front is benchmarked by ``references/s3d.py``). The timed call is
``MMFusionSeparate.forward_video`` with ``[CLS] [SEP]`` as the caption columns it reads,
returning ``pooled_video``, which vtzoo's ``embed_video`` returns as ``pooled``. With
``bench.py --text`` the timed call is ``forward_text`` on the same token ids as vtzoo's
``forward_text``.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stand_ins import module_replaced  # noqa: E402  (loaded by path, as bench.py loads adapters)

LEGACY_PACKAGE = "vtzoo_bench_mmpt_transformers"  # where transformers 3.4 is imported
DEMO_CONFIG = "projects/retri/videoclip/how2.yaml"


class _Config:
    """Attribute view of a yaml block that answers None for missing keys, like MMPT's OmegaConf configs."""

    def __init__(self, values: dict[str, Any]):
        for key, value in values.items():
            setattr(self, key, _Config(value) if isinstance(value, dict) else value)

    def __getattr__(self, name: str) -> None:
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def _mmpt_root(path: str) -> Path:
    root = Path(path).resolve()
    for candidate in (root / "examples" / "MMPT", root):
        if (candidate / "mmpt" / "models" / "mmfusion.py").is_file():
            return candidate
    raise SystemExit(f"{path}: no examples/MMPT/mmpt/models/mmfusion.py (expected a facebookresearch/fairseq checkout)")


def _legacy_transformers(path: str):
    """transformers 3.4's ``modeling_bert``, imported as ``LEGACY_PACKAGE.modeling_bert``."""
    if f"{LEGACY_PACKAGE}.modeling_bert" in sys.modules:
        return sys.modules[f"{LEGACY_PACKAGE}.modeling_bert"]
    folder = Path(os.environ.get("MMPT_TRANSFORMERS") or Path(path).resolve().parent / "transformers-3.4.0")
    package_dir = folder / "transformers"
    if not (package_dir / "modeling_bert.py").is_file():
        raise SystemExit(
            f"the original VideoCLIP needs transformers 3.x: unpack the transformers==3.4.0 wheel into {folder} "
            "(so that it holds transformers/modeling_bert.py) or set MMPT_TRANSFORMERS to such a folder"
        )
    package = types.ModuleType(LEGACY_PACKAGE)
    package.__path__ = [str(package_dir)]  # a bare package: its __init__ (tokenizers, TF, ...) never runs
    package.__version__ = "3.4.0"
    sys.modules[LEGACY_PACKAGE] = package
    return importlib.import_module(f"{LEGACY_PACKAGE}.modeling_bert")


def _import_original(path: str):
    root = _mmpt_root(path)
    modeling_bert = _legacy_transformers(path)
    for name, folder in (("mmpt", root / "mmpt"), ("mmpt.models", root / "mmpt" / "models")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(folder)]
            sys.modules[name] = package
    with module_replaced("transformers.modeling_bert", modeling_bert):
        from mmpt.models import mmfusion  # noqa: E402  (the checkout's module)
    return root, mmfusion, modeling_bert


def _original_model(path: str, config) -> torch.nn.Module:
    root, mmfusion, modeling_bert = _import_original(path)
    mmpt_config = _Config(yaml.safe_load((root / DEMO_CONFIG).read_text()))
    if mmpt_config.model.num_hidden_video_layers != config.video_num_hidden_layers:
        raise SystemExit(f"{DEMO_CONFIG} has {mmpt_config.model.num_hidden_video_layers} video layers; "
                         f"the vtzoo variant has {config.video_num_hidden_layers}")

    def bert_config(name: str = "bert-base-uncased"):  # bert-base-uncased's sizes, as the variant has them
        return modeling_bert.BertConfig(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size,
            num_hidden_layers=config.text_num_hidden_layers,
            num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
            hidden_act=config.hidden_act, hidden_dropout_prob=config.hidden_dropout_prob,
            attention_probs_dropout_prob=config.attention_probs_dropout_prob,
            max_position_embeddings=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
            initializer_range=0.02, layer_norm_eps=config.layer_norm_eps, pad_token_id=config.pad_token_id)  # fmt: skip

    def random_from_pretrained(cls, name, config=None, **kwargs):
        return cls(config if config is not None else bert_config(name)).eval()

    mmfusion.AutoConfig = types.SimpleNamespace(from_pretrained=bert_config)
    modeling_bert.BertPreTrainedModel.from_pretrained = classmethod(random_from_pretrained)
    torch.manual_seed(0)
    model = mmfusion.MMFusionSeparate(mmpt_config)
    return model.float().eval()


def build(path: str, op, inputs: Any) -> tuple[Callable[[], Any], int]:
    """The original's ``forward_video`` on per-second features (B, T, 512), or with ``--text`` its
    ``forward_text`` on ``{"ids", "mask"}``; vtzoo loaded alike."""
    from vtzoo.registry.weights import load_state_dict_strict

    config = op.model.config
    original = _original_model(path, config)
    converted = op.model.converters()["original"](original.state_dict(), config)
    # the MMPT checkpoint alone: the S3D in front keeps its own weights (features skip it)
    load_state_dict_strict(op.model, converted, origin=f"original VideoCLIP at {path}",
                           may_miss=getattr(converted, "initialised", ()))
    count = sum(p.numel() for p in original.parameters())
    if isinstance(inputs, dict):  # bench.py --text: token ids in the caption layout
        ids, mask = inputs["ids"], inputs["mask"].bool()
        return (lambda: original.forward_text(ids, mask)), count
    features = inputs.float()
    batch, steps = features.shape[:2]
    vmasks = torch.ones(batch, steps, dtype=torch.bool)
    caps = torch.tensor([[config.cls_token_id, config.sep_token_id]]).expand(batch, 2)
    cmasks = torch.ones(batch, 2, dtype=torch.bool)

    def run() -> torch.Tensor:
        return original.forward_video(features, vmasks, caps, cmasks)

    return run, count
