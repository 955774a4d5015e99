"""COOT under bf16: the network keeps float32 weights (too small for bf16 weights to pay; it runs
under the operator's autocast); the paragraph BERT takes bf16 weights; both match float32."""

import copy

import torch

import vtzoo

from ..conftest import bf16_against_fp32
from .conftest import TINY


def test_bf16_operator_keeps_the_float32_network(yc2_case, tiny_bert, vocab_file):
    op = vtzoo.create("coot", "youcook2-s3d", weights=str(yc2_case["weights"]), video_feature_dim=48,
                      text_model=tiny_bert, tokenizer=vocab_file, precision="fp32", **TINY)  # fmt: skip
    assert bf16_against_fp32(op, op.example_video_input(2), bf16_weights=False) > 0.999
    low = copy.deepcopy(op).configure("bf16")
    paragraph = ["the onion is chopped finely", "it goes into the pan with oil"]
    ours, theirs = low.text_encoder(paragraph).features, op.text_encoder(paragraph).features
    assert low.text_encoder.bert.encoder.layer[0].attention.self.query.weight.dtype == torch.bfloat16
    assert ours.dtype == torch.float32
    assert float(torch.nn.functional.cosine_similarity(ours, theirs).min()) > 0.999
