"""The Frozen in Time network, its converter and its config, on tiny sizes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vtzoo.operators.frozen_in_time import (
    FrozenInTimeConfig,
    FrozenInTimeModel,
    convert_original_state_dict,
    fit_temporal_embed,
)
from vtzoo.registry.weights import WeightsError, load_state_dict_strict


def test_full_size_parameter_count_matches_the_original_shapes():
    """ViT-B/16 space-time tower + DistilBERT-base + 256-d minimal projections, counted from the
    original's parameter shapes (model/video_transformer.py, model/model.py)."""
    d, n, frames, mlp, depth = 768, 14 * 14, 4, 3072, 12
    linear = lambda i, o: i * o + o  # noqa: E731
    block = 3 * 2 * d + 2 * (linear(d, 3 * d) + linear(d, d)) + linear(d, mlp) + linear(mlp, d)  # norms, 2 attns, mlp
    video = (3 * 16 * 16 * d + d) + d + (1 + n) * d + frames * d + depth * block + 2 * d
    text_layer = 4 * linear(d, d) + 2 * d + linear(d, 3072) + linear(3072, d) + 2 * d
    text = 30522 * d + 512 * d + 2 * d + 6 * text_layer
    projections = 2 * linear(d, 256)
    assert text == 66_362_880  # distilbert-base-uncased's published size
    with torch.device("meta"):
        model = FrozenInTimeModel(FrozenInTimeConfig())
    assert sum(p.numel() for p in model.parameters()) == video + text + projections == 180_925_184


@pytest.fixture(scope="module")
def tiny_model(standard_case, tiny_config):
    model = FrozenInTimeModel(tiny_config).eval()
    load_state_dict_strict(model, convert_original_state_dict(standard_case["state_dict"], tiny_config))
    return model


def test_fewer_frames_use_the_first_temporal_entries(tiny_model, standard_case):
    """A 2-frame clip gets temporal_embed[:, :2]; computed here from the parameters directly."""
    video = standard_case["inputs"]["video"][:, :2]
    vm = tiny_model.video_model
    with torch.no_grad():
        tokens = vm.embed(video)
        patches = vm.patch_embed.proj(video.flatten(0, 1)).flatten(2).transpose(1, 2)  # (B*F, N, D)
        n = patches.shape[1]
        expected_frame1 = patches.reshape(2, 2, n, -1)[:, 1] + vm.pos_embed[:, 1:] + vm.temporal_embed[:, 1]
    assert tokens.shape == (2, 1 + 2 * n, vm.pos_embed.shape[-1])
    torch.testing.assert_close(tokens[:, 1 + n :], expected_frame1)
    torch.testing.assert_close(tokens[:, 0], (vm.cls_token + vm.pos_embed[:, 0]).expand(2, 1, -1)[:, 0])


def test_too_many_frames_and_wrong_shapes_are_refused(tiny_model, tiny_config):
    size = tiny_config.img_size
    with pytest.raises(ValueError, match="at most num_frames=4"):
        tiny_model.encode_video(torch.zeros(1, 5, 3, size, size))
    with pytest.raises(ValueError, match=r"\(batch, frames, 3, H, W\)"):
        tiny_model.encode_video(torch.zeros(4, 3, size, size))
    with pytest.raises(ValueError, match="expected video frames of shape"):
        tiny_model.encode_video(torch.zeros(1, 4, 3, size + 8, size))


def test_temporal_fixes_by_hand():
    table = torch.tensor([[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]])  # (1, 3 frames, D=2)
    two = table[:, :2]
    # more frames than the model: truncated whatever the fix says
    assert torch.equal(fit_temporal_embed(table, 2, "bilinear"), two)
    # zeros: copy, then zeros
    assert torch.equal(fit_temporal_embed(two, 4, "zeros")[0], torch.tensor([[1.0, 10], [2, 20], [0, 0], [0, 0]]))
    # interp = legacy nearest: source frame floor(i * 3 / 8)
    nearest = fit_temporal_embed(table, 8, "interp")[0, :, 0]
    assert nearest.tolist() == [1, 1, 1, 2, 2, 2, 3, 3]
    # bilinear (align_corners=False), 2 -> 4: source positions -0.25, 0.25, 0.75, 1.25 (clamped)
    bilinear = fit_temporal_embed(two, 4, "bilinear")[0, :, 0]
    torch.testing.assert_close(bilinear, torch.tensor([1.0, 1.25, 1.75, 2.0]))
    # the embedding dimension is never mixed
    torch.testing.assert_close(fit_temporal_embed(two, 4, "bilinear")[0, :, 1], bilinear * 10)


def test_converter_handles_data_parallel_and_old_buffers(standard_case, tiny_config):
    sd = {"module." + k: v for k, v in standard_case["state_dict"].items()}
    sd["module.text_model.embeddings.position_ids"] = torch.arange(40).unsqueeze(0)
    converted = convert_original_state_dict(sd, tiny_config)
    assert set(converted) == set(standard_case["state_dict"])


def test_converter_fits_a_checkpoint_with_another_frame_count(standard_case, tiny_config):
    config = dataclasses.replace(tiny_config, num_frames=8, load_temporal_fix="zeros")
    converted = convert_original_state_dict(standard_case["state_dict"], config)
    temporal = converted["video_model.temporal_embed"]
    assert temporal.shape == (1, 8, tiny_config.embed_dim)
    assert torch.equal(temporal[:, :4], standard_case["state_dict"]["video_model.temporal_embed"])
    assert not temporal[:, 4:].any()
    load_state_dict_strict(FrozenInTimeModel(config), converted)


def test_wrong_family_checkpoint_names_what_was_expected(tiny_config):
    clip_like = {"clip.visual.conv1.weight": torch.zeros(1), "clip.logit_scale": torch.zeros(())}
    with pytest.raises(WeightsError, match="not a Frozen in Time checkpoint.*video_model"):
        convert_original_state_dict(clip_like, tiny_config)


def test_other_spatial_resolution_is_refused(standard_case, tiny_config):
    config = dataclasses.replace(tiny_config, img_size=48)
    with pytest.raises(WeightsError, match="16 spatial patches per frame but the model has 36"):
        convert_original_state_dict(standard_case["state_dict"], config)


def test_projection_none_has_no_projection_parameters(tiny_config):
    model = FrozenInTimeModel(dataclasses.replace(tiny_config, projection=""))
    assert not any(k.startswith(("txt_proj", "vid_proj")) for k in model.state_dict())
    assert isinstance(model.txt_proj, torch.nn.Identity)


def test_config_rejects_what_the_original_does_not_implement():
    with pytest.raises(ValueError, match="projection"):
        FrozenInTimeConfig(projection="mlp")
    with pytest.raises(ValueError, match="load_temporal_fix"):
        FrozenInTimeConfig(load_temporal_fix="cubic")
    with pytest.raises(ValueError, match="DistilBERT"):
        FrozenInTimeConfig(text_model="bert-base-uncased")


def test_untrained_time_attention_starts_as_the_original_zeros_init(tiny_config):
    block = FrozenInTimeModel(tiny_config).video_model.blocks[0]
    assert not block.timeattn.qkv.weight.any() and not block.timeattn.qkv.bias.any()
    assert torch.equal(block.timeattn.proj.weight, torch.ones_like(block.timeattn.proj.weight))
