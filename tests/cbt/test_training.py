"""CBT through `vtzoo train`: pre-training lowers its loss (also with gradient accumulation over the
batch-wide losses), resumes, reloads; the linear probe trains on the frozen model and the folder
classifies raw video."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

import vtzoo

FEATURES = {"extractor": "thumbnails", "fps": 4.0, "size": 4}


def micro(**extra):
    return {"config.feature_dim": 48, "config.hidden_size": 32, "config.visual_layers": 1, "config.visual_heads": 2,
            "config.intermediate_size": 64, "config.max_clips": 16, "config.text_hidden_size": 32,
            "config.text_layers": 1, "config.text_heads": 2, "config.text_intermediate_size": 64,
            "config.max_text_tokens": 24, "config.cross_heads": 2, "family.features": FEATURES,
            "train.epochs": 6, "train.batch_size": 2, "train.global_batch": 4, "train.eval_every": 3,
            "train.checkpoint_every": 2, "data.num_workers": 0, "optimizer.lr": 3e-3, "schedule.name": "constant",
            "schedule.warmup": 0.0, **extra}


def steps(out):
    return [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]


def test_cbt_pretrains_with_accumulation_resumes_and_probes(speech_dataset, bert_vocab, tmp_path):
    out = tmp_path / "cbt"
    vtzoo.train("cbt", speech_dataset, out, overrides=micro(**{"train.epochs": 3}), progress=False)
    final = vtzoo.train("cbt", speech_dataset, out, overrides=micro(), resume=True, progress=False)
    log = steps(out)
    assert [s["step"] for s in log] == [1, 2, 3, 4, 5, 6]  # 2 x 2 items per step, resumed at step 4
    losses = [s["loss"] for s in log]
    assert sum(losses[-2:]) < sum(losses[:2]), losses
    assert "t2v_r5" in final
    op = vtzoo.create("cbt", weights=str(out), tokenizer=bert_vocab, precision="fp32")
    assert op.config.clip_features["extractor"] == "thumbnails" and op.clips.dim == 48
    video = str(speech_dataset / "videos" / json.loads((speech_dataset / "splits.json").read_text())["test"][0])
    assert op.embed_video([video]).pooled.shape == (1, 32)

    probe_out = tmp_path / "probe"
    probe = {"train.epochs": 4, "train.batch_size": 4, "train.global_batch": 4, "train.eval_every": 2,
             "data.num_workers": 0, "optimizer.lr": 5e-2}
    metrics = vtzoo.train("cbt", speech_dataset, probe_out, recipe="linear-probe", weights=str(out), overrides=probe,
                          progress=False)
    assert {"top1", "top5"} <= set(metrics)
    losses = [s["loss"] for s in steps(probe_out)]
    assert losses[-1] < losses[0], losses
    labels = sorted(set(json.loads((speech_dataset / "labels.json").read_text()).values()))
    classifier = vtzoo.create("cbt", weights=str(probe_out), tokenizer=bert_vocab, precision="fp32")
    assert list(classifier.config.labels) == labels
    ranked = classifier.classify([video], top_k=len(labels))[0]
    assert sorted(name for name, _ in ranked) == labels and abs(sum(p for _, p in ranked) - 1) < 1e-5
    # the probe trained on frozen features: every other weight is the pre-trained one
    pretrained, probed = load_file(str(out / "model.safetensors")), load_file(str(probe_out / "model.safetensors"))
    assert set(probed) - set(pretrained) == {"probe.weight", "probe.bias"}
    assert all(torch.equal(pretrained[k], probed[k]) for k in pretrained)
