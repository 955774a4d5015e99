"""Explicit-state streaming: chunked == whole clip for every stream variant, state checks."""

from __future__ import annotations

import math

import pytest
import torch

from vtzoo.operators.movinet import MovinetConfig, MovinetInputError, MovinetModel
from vtzoo.operators.movinet.golden import regenerate_weights
from vtzoo.operators.movinet.model import sinusoidal_frame_encoding

CHUNKINGS = [[1, 1, 1, 1, 1], [2, 3], [4, 1], [3, 2]]
# the larger networks: frame by frame and one uneven split (time budget)
CHUNKINGS_LARGE = [[1, 1, 1, 1], [3, 1]]


def _stream_model(model_id: str, positional: bool | None = None, seed: int = 7) -> MovinetModel:
    if positional is None:
        positional = model_id in ("a3", "a4", "a5")
    config = MovinetConfig(model_id=model_id, causal=True, conv_type="2plus1d", use_positional_encoding=positional)
    with torch.device("meta"):  # skip the default init: every tensor is replaced below
        model = MovinetModel(config)
    # non-trivial BatchNorm statistics, ReZero alphas and encoding scales (defaults would hide branches)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    model.load_state_dict(regenerate_weights({"method": "movinet-seeded-v1", "seed": seed}, shapes), assign=True)
    return model.eval()


def _video(frames: int = 5, size: int = 20, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("model_id", ["a0", "a1", "a2", "a3", "a4", "a5"])
def test_chunked_stream_equals_whole_clip(model_id):
    model = _stream_model(model_id)
    large = model_id in ("a3", "a4", "a5")
    video = _video(frames=4, size=16, batch=1) if large else _video()
    with torch.no_grad():
        whole_logits, whole_pooled = model.forward_pooled(video)
        for chunks in CHUNKINGS_LARGE if large else CHUNKINGS:
            state = model.init_state(video.shape[0], video.shape[-2], video.shape[-1])
            start = 0
            for size in chunks:
                logits, pooled, state = model.step(video[:, :, start : start + size], state)
                # every intermediate prediction equals a fresh call on the prefix
                if start == 0 and size < video.shape[2]:
                    prefix_logits, _ = model.forward_pooled(video[:, :, :size])
                    torch.testing.assert_close(logits, prefix_logits, atol=1e-5, rtol=0)
                start += size
            assert state.frames_seen == video.shape[2]
            torch.testing.assert_close(logits, whole_logits, atol=1e-5, rtol=0)
            torch.testing.assert_close(pooled, whole_pooled, atol=1e-5, rtol=0)
    # the check is not vacuous: predictions move from frame to frame
    first, _ = model.forward_pooled(video[:, :, :1])
    assert (first - whole_logits).abs().max() > 1e-3


def test_state_is_explicit_and_not_mutated():
    model = _stream_model("a0")
    video = _video()
    with torch.no_grad():
        state0 = model.init_state(2, 20, 20)
        assert state0.tensors == {} and state0.frames_seen == 0
        logits_a, _, state1 = model.step(video[:, :, :2], state0)
        # stepping again from the same state gives the same answer (nothing hidden in the modules)
        logits_b, _, _ = model.step(video[:, :, :2], state0)
        torch.testing.assert_close(logits_a, logits_b, atol=0, rtol=0)
        assert state0.tensors == {}
        # forks of one state continue independently
        fork_1, _, _ = model.step(video[:, :, 2:3], state1)
        fork_2, _, _ = model.step(video[:, :, 3:4], state1)
        assert (fork_1 - fork_2).abs().max() > 1e-4
    assert not any(isinstance(v, torch.Tensor) and k.startswith("activation") for k, v in vars(model).items())
    # buffers hold k_t-1 frames per causal temporal conv, independent of how long the stream ran
    for key, tensor in state1.tensors.items():
        assert tensor.shape[2] <= 4, key


def test_stream_memory_is_constant():
    model = _stream_model("a0")
    video = _video(frames=12, size=16, batch=1)
    sizes = []
    with torch.no_grad():
        state = model.init_state(1, 16, 16)
        for t in range(12):
            _, _, state = model.step(video[:, :, t : t + 1], state)
            sizes.append(sum(v.numel() for v in state.tensors.values()))
    assert len(set(sizes)) == 1


def test_bad_chunks_are_refused_clearly():
    model = _stream_model("a0")
    video = _video()
    state = model.init_state(2, 20, 20)
    with pytest.raises(MovinetInputError, match="batch size"):
        model.step(video[:1, :, :2], state)
    with pytest.raises(MovinetInputError, match="20x20"):
        model.step(torch.rand(2, 3, 2, 24, 24), state)
    with pytest.raises(MovinetInputError, match="RGB"):
        model.step(torch.rand(2, 1, 2, 20, 20), state)
    with pytest.raises(MovinetInputError, match="RGB"):
        model.step(torch.rand(2, 4, 2, 20, 20), state)
    with torch.device("meta"):
        other = MovinetModel(MovinetConfig(model_id="a1", causal=True, conv_type="2plus1d"))
    with pytest.raises(MovinetInputError, match="made for"):
        other.step(video[:, :, :2], state)
    with pytest.raises(MovinetInputError, match="StreamState"):
        model.step(video[:, :, :2], {"not": "a state"})
    base = MovinetModel(MovinetConfig(model_id="a0"))
    with pytest.raises(MovinetInputError, match="stream variant"):
        base.init_state(1, 20, 20)


def test_base_model_refuses_clips_shorter_than_its_temporal_kernel():
    base = MovinetModel(MovinetConfig(model_id="a0")).eval()
    with pytest.raises(MovinetInputError, match="at least 5 frames"):
        base(torch.rand(1, 3, 4, 20, 20))
    with pytest.raises(MovinetInputError, match="RGB"):
        base(torch.rand(1, 1, 5, 20, 20))
    assert base(torch.rand(1, 3, 5, 20, 20)).shape == (1, 600)


def test_positional_encoding_values_by_hand():
    # channels 4: angle rates 1, 1, 1/100, 1/100; output = [sin even channels, cos odd channels]
    enc = sinusoidal_frame_encoding(3, 2, 4, "cpu", torch.float32)
    assert enc.shape == (1, 4, 2, 1, 1)
    for t, pos in enumerate((3, 4)):
        expected = [math.sin(pos), math.sin(pos / 100), math.cos(pos), math.cos(pos / 100)]
        torch.testing.assert_close(enc[0, :, t, 0, 0], torch.tensor(expected), atol=1e-6, rtol=0)


def test_positional_encoding_changes_predictions():
    video = _video(frames=3, size=16)
    with torch.no_grad():
        with_pe = _stream_model("a3", positional=True)(video)
        without = _stream_model("a3", positional=False)(video)
    assert (with_pe - without).abs().max() > 1e-3


def test_se_gates_by_hand():
    from vtzoo.operators.movinet.model import HardSigmoidGate, HardSigmoidRelu6Gate

    x = torch.tensor([-4.0, -1.0, 0.0, 2.0, 4.0])
    torch.testing.assert_close(HardSigmoidGate()(x), torch.tensor([0.0, 0.3, 0.5, 0.9, 1.0]))
    torch.testing.assert_close(HardSigmoidRelu6Gate()(x), torch.tensor([0.0, 2 / 6, 0.5, 5 / 6, 1.0]))
    with torch.device("meta"):
        default = MovinetModel(MovinetConfig(model_id="a0", causal=True, conv_type="2plus1d"))
        relu6 = MovinetModel(MovinetConfig(model_id="a0", causal=True, conv_type="2plus1d", se_gate="hard_sigmoid_relu6"))
        base = MovinetModel(MovinetConfig(model_id="a0"))
    assert isinstance(default.blocks.b0_l0.se.activation_2, HardSigmoidGate)
    assert isinstance(relu6.blocks.b0_l0.se.activation_2, HardSigmoidRelu6Gate)
    assert isinstance(base.blocks.b0_l0.se.activation_2, torch.nn.Sigmoid)
