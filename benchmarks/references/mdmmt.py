"""Reference adapter: the original MDMMT code (a checkout of papermsucode/mdmmt) on the same
weights and input as vtzoo, for ``benchmarks/bench.py --op mdmmt --reference PATH``.

The original video model is built as its ``test.py`` builds it: ``BertVID(expert_dims=...,
vid_bert_params=...)`` with the experts and video-transformer sizes of the vtzoo variant (for
``mdmmt-3mod``, the default, exactly test.py's: VIDEO 2048-d, CLIP 512-d, tf_vggish 128-d, 30
tokens each, 9 layers of 512), seeded, in eval mode. test.py's ``BertTXT`` is built too, because
vtzoo loads both towers from one release (``vid_state_dict`` + ``txt_state_dict``): the
``bert-base-cased`` that it would read with ``transformers.modeling_bert.BertModel.from_pretrained``
(a transformers < 4 module path) is a random ``transformers.BertModel`` of the variant's text
config, and its tokenizer, which the video path never uses, is not loaded. Both state dicts are
converted into vtzoo as a release would be.

Workload: the video tower on precomputed expert features, every expert's 30 tokens filled
(``example_video_input``), 32 videos per call (test.py's ``--video_batch_size``). The timed call
is ``BertVID.forward(features, features_t, features_ind)`` on vtzoo's collate of them (the
original's batch layout), returning the concatenated L2-normalised expert embeddings, which
vtzoo's ``embed_video`` returns as ``pooled``. The text tower is not timed.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stand_ins import module_replaced  # noqa: E402  (loaded by path, as bench.py loads adapters)


def _import_original(path: str, text_config: dict[str, Any]):
    from transformers import BertConfig, BertModel

    class RandomBert:  # stands in for transformers.modeling_bert.BertModel (text tower only)
        @staticmethod
        def from_pretrained(name: str, **params: Any) -> BertModel:
            return BertModel(BertConfig(**{**text_config, **params}))

    class NoTokenizer:  # the tokenizer only serves BertTXT.forward on strings, never timed here
        @staticmethod
        def from_pretrained(name: str) -> None:
            return None

    checkout = str(Path(path).resolve())
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    legacy = types.ModuleType("transformers.modeling_bert")
    legacy.BertModel = RandomBert
    with module_replaced("transformers.modeling_bert", legacy):
        import models.mmt as original_module  # noqa: E402  (the checkout's package)
    original_module.AutoTokenizer = NoTokenizer
    return original_module


def _original_models(path: str, config) -> tuple[torch.nn.Module, torch.nn.Module]:
    dropouts = ("hidden_dropout_prob", "attention_probs_dropout_prob")  # BertTXT passes its own
    text_config = {k: v for k, v in config.text_bert.items() if k not in dropouts}
    original_module = _import_original(path, text_config)
    experts_info = {e["name"]: dict(dim=int(e["dim"]), idx=int(e["idx"]), max_tok=int(e["max_tok"]))
                    for e in config.experts}
    vid_bert_params = {
        "vocab_size_or_config_json_file": 10, "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers, "intermediate_size": config.intermediate_size,
        "hidden_act": config.hidden_act, "hidden_dropout_prob": config.hidden_dropout_prob,
        "attention_probs_dropout_prob": config.attention_probs_dropout_prob,
        "max_position_embeddings": config.max_position_embeddings, "type_vocab_size": config.type_vocab_size,
        "initializer_range": 0.02, "layer_norm_eps": config.layer_norm_eps,
        "num_attention_heads": config.num_attention_heads,
    }  # fmt: skip
    txt_bert_params = {"hidden_dropout_prob": config.text_bert.get("hidden_dropout_prob", 0.2),
                       "attention_probs_dropout_prob": config.text_bert.get("attention_probs_dropout_prob", 0.2)}
    torch.manual_seed(0)
    video = original_module.BertVID(expert_dims=experts_info, same_dim=config.same_dim, vid_bert_params=vid_bert_params)
    text = original_module.BertTXT(modalities=list(experts_info), max_length=config.text_max_length,
                                   add_special_tokens=True, add_dot=config.add_dot, same_dim=config.same_dim,
                                   txt_bert_params=txt_bert_params)
    return video.float().eval(), text.float().eval()


def build(path: str, op, batch) -> tuple[Callable[[], Any], int]:
    """The original's ``BertVID`` on ``batch`` (vtzoo's ``ExpertBatch``), with vtzoo loaded alike."""
    from vtzoo.registry.weights import load_state_dict_strict

    config = op.model.config
    if config.architecture != "mdmmt":
        raise SystemExit("this adapter runs papermsucode/mdmmt (architecture 'mdmmt'); MMT variants need gabeur/mmt")
    video, text = _original_models(path, config)
    release = {"vid_state_dict": video.state_dict(), "txt_state_dict": text.state_dict()}  # test.py's checkpoint
    converted = op.model.converters()["original"](release, config)
    load_state_dict_strict(op.model, converted, origin=f"original MDMMT at {path}")
    # BertVID clamps the timings in place: it gets its own copies
    features = dict(batch.features)
    features_ind = dict(batch.features_ind)
    timings = {name: t.clone() for name, t in batch.features_t.items()}

    def run() -> torch.Tensor:
        return video(features, dict(timings), features_ind)

    return run, sum(p.numel() for p in video.parameters())
