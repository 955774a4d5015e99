"""MDMMT's transformers in bf16 against float32; irCSN (the VIDEO expert) in bf16 + channels_last_3d."""

import copy

import torch

import vtzoo
from vtzoo.operators.mdmmt.experts.ircsn152.model import IrCsnConfig, IrCsnModel

from ..conftest import bf16_against_fp32
from .conftest import TINY_EXPERTS, TINY_MDMMT


def test_bf16_video_embeddings_match_fp32(bert_vocab_dir):
    torch.manual_seed(0)
    op = vtzoo.create("mdmmt", weights="random", tokenizer=bert_vocab_dir, expert_config=TINY_EXPERTS,
                      precision="fp32", **TINY_MDMMT)  # fmt: skip
    assert bf16_against_fp32(op, op.example_video_input(2)) > 0.999


def test_ircsn_bf16_features_match_fp32():
    torch.manual_seed(0)
    model = IrCsnModel(IrCsnConfig(layers=[1, 1, 1, 1], num_classes=0)).eval()
    low = copy.deepcopy(model)
    low.apply_precision("bf16")
    assert low.stem[0].weight.dtype == torch.bfloat16
    assert low.stem[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.inference_mode():
        ours, theirs = low.features(clip), model.features(clip)
    assert ours.dtype == torch.float32
    assert float(torch.nn.functional.cosine_similarity(ours, theirs).min()) > 0.999
