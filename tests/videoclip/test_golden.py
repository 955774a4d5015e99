"""VideoCLIP parity with the original: the golden case, and other batch sizes / numbers of video steps.

The extra cases reuse the golden case's weights and inputs: any subset or reordering of the
batch, the video features zero-padded to max_video_len (as the original's aligner always
feeds them) or cut to their valid steps, and captions padded to the original's fixed length
must reproduce the recorded rows (the original masks padding on the key side and pools over
valid positions only; its README checked the padded form against the original: 4.5e-7).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from vtzoo.operators.videoclip.golden import build_from_case, config_from_case
from vtzoo.registry.golden import GoldenCase, verify_case

CASE = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "videoclip" / "videoclip"
ATOL = 1e-5




@pytest.fixture(scope="module")
def case() -> GoldenCase:
    return GoldenCase.open(CASE)


@pytest.fixture(scope="module")
def model(case):
    return build_from_case(case)


def test_golden_case_passes_with_every_output_computed():
    lines: list[str] = []
    assert verify_case(CASE, emit=lines.append), "\n".join(lines)
    assert not any("SKIPPED" in line or "NOT_COMPUTED" in line for line in lines)
    assert sum("max_abs_err=" in line for line in lines) == 19


def test_config_is_read_from_the_case_not_the_folder(case):
    cfg = config_from_case(case)
    assert (cfg.hidden_size, cfg.text_num_hidden_layers, cfg.video_num_hidden_layers) == (64, 2, 1)
    assert (cfg.max_video_len, cfg.max_len, cfg.vocab_size, cfg.with_s3d) == (32, 42, 1000, False)
    broken = dataclasses.replace(case, config={**case.config, "mmpt_config": {"model": {"model_cls": "MMFusionJoint"}}})
    with pytest.raises(Exception, match="not supported"):
        config_from_case(broken)


@pytest.mark.parametrize("rows", [[0], [1], [1, 0], [0, 1, 1]])
def test_any_batch_reproduces_the_recorded_rows(case, model, rows):
    inputs, expected = case.inputs(), case.outputs()
    index = torch.tensor(rows)
    with torch.inference_mode():
        video = model.forward_video(inputs["vfeats"][index], inputs["vmasks"][index])
        text = model.forward_text(inputs["caps"][index], inputs["cmasks"][index])
    torch.testing.assert_close(video.pooled, expected["pooled_video"][index], atol=ATOL, rtol=0)
    torch.testing.assert_close(text.pooled, expected["pooled_text"][index], atol=ATOL, rtol=0)
    sim = model.similarity(text.pooled, video.pooled)
    torch.testing.assert_close(sim, expected["sim_text_video"][index][:, index], atol=ATOL, rtol=0)


@pytest.mark.parametrize("steps", [2, 3, 9, 32])
def test_other_numbers_of_video_steps(case, model, steps):
    """Sample 1 has 2 valid seconds: cut to 2-3 steps or zero-padded up to max_video_len."""
    inputs, expected = case.inputs(), case.outputs()
    feats = torch.zeros(1, steps, 512)
    mask = torch.zeros(1, steps, dtype=torch.bool)
    feats[0, :2], mask[0, :2] = inputs["vfeats"][1, :2], True
    with torch.inference_mode():
        video = model.forward_video(feats, mask)
    torch.testing.assert_close(video.pooled[0], expected["pooled_video"][1], atol=ATOL, rtol=0)
    # the video [SEP] keeps position max_video_len + 1 whatever the number of steps
    assert video.encoder_inputs["position_ids"].tolist() == [[*range(steps + 1), 33]]


def test_captions_padded_to_the_original_fixed_length(case, model):
    inputs, expected = case.inputs(), case.outputs()
    caps = torch.zeros(2, 64, dtype=torch.long)
    cmasks = torch.zeros(2, 64, dtype=torch.bool)
    caps[:, :10], cmasks[:, :10] = inputs["caps"], inputs["cmasks"]
    with torch.inference_mode():
        text = model.forward_text(caps, cmasks)
    torch.testing.assert_close(text.pooled, expected["pooled_text"], atol=ATOL, rtol=0)


def test_pooling_weights_follow_the_original(case, model):
    """Video: valid seconds + [SEP], no [CLS]. Text: words + final [SEP], no [CLS]."""
    inputs = case.inputs()
    with torch.inference_mode():
        video = model.forward_video(inputs["vfeats"], inputs["vmasks"])
        text = model.forward_text(inputs["caps"], inputs["cmasks"])
    assert video.pool_weights[1].tolist() == pytest.approx([0, 1 / 3, 1 / 3, 0, 0, 1 / 3])
    # sample 1: [CLS] w w w [SEP] pad pad pad pad -> 3 words + [SEP]
    assert text.pool_weights[1].tolist() == pytest.approx([0, 0.25, 0.25, 0.25, 0.25, 0, 0, 0, 0])


ORIGINAL_SHAPES = Path(__file__).parent / "data" / "original_other_shapes.safetensors"


@pytest.mark.parametrize("prefix", ["b1_t1", "b3_t7", "b4_t13", "b5_t32", "b2_t3_empty", "b2_t40"])
def test_other_batch_sizes_and_steps_against_the_original(model, prefix):
    """Outputs of the original code on new shapes (see data/README.md) with the golden weights."""
    from safetensors.torch import load_file

    ref = {k.split(".", 1)[1]: v for k, v in load_file(str(ORIGINAL_SHAPES)).items() if k.startswith(prefix + ".")}
    with torch.inference_mode():
        video = model.forward_video(ref["vfeats"], ref["vmasks"], ref["caps"], ref["cmasks"], truncate=False)
        text = model.forward_text(ref["caps"], ref["cmasks"])
    torch.testing.assert_close(video.pooled, ref["pooled_video"], atol=ATOL, rtol=0)
    torch.testing.assert_close(text.pooled, ref["pooled_text"], atol=ATOL, rtol=0)
