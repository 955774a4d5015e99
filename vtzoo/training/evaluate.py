"""Validation and test metrics of a model in training, through the operator's own inference.

Retrieval: every item's video through ``op.embed_video``, every query text (a family may choose
them, default the item's captions) through ``op.embed_text``, scored by ``op.similarity`` and
ranked by :func:`vtzoo.pipelines.evaluation.retrieval_metrics`: the numbers ``vtzoo eval`` gives
for the saved model. Classification: top-1 / top-5 of the family's ``predict``. Recalls and
accuracies are fractions in [0, 1]; MdR / MnR are ranks.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from vtzoo.errors import VtzooError
from vtzoo.training.data import Failed, Sample, SampleDataset, make_loader
from vtzoo.training.family import RETRIEVAL


def eval_batches(run: Any, items: Sequence[Any]):
    settings = run.settings_for_epoch(run.epoch)
    dataset = SampleDataset([Sample(item) for item in items],
                            lambda sample, rng: run.family.load(run.op, sample, settings, False, rng), run.seed, 0)
    return make_loader(dataset, run.batch_size, run.family.collate, run.workers)


def evaluate(run: Any, items: Sequence[Any]) -> dict[str, Any]:
    """Metrics of ``run.op`` on ``items`` (the model is put in eval mode and back)."""
    modules = run.family.trained_modules(run.op)
    modes = [m.training for m in modules]
    for module in modules:
        module.eval()
    try:
        with torch.inference_mode():
            if run.family.task == RETRIEVAL:
                return _retrieval(run, items)
            return _classification(run, items)
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)


def _embedded(run: Any, items: Sequence[Any]) -> tuple[Any, list[str], list[Failed]]:
    """Video embeddings of the items that decode (in order), their keys, and the failures."""
    from vtzoo.operators.base import Embeddings

    videos, keys, failed = [], [], []
    for batch in eval_batches(run, items):
        failed += batch["failed"]
        if batch["size"]:
            videos.append(run.op.embed_video(run.family.video_input(run.op, batch)))
            keys += batch["key"]
    run.note_failures(failed)
    return (Embeddings.concat(videos) if videos else None), keys, failed


def embed_videos(run: Any, items: Sequence[Any]) -> torch.Tensor:
    """(len(items), D) pooled video vectors in eval mode; an item that fails to decode gets zeros."""
    modules = run.family.trained_modules(run.op)
    modes = [m.training for m in modules]
    for module in modules:
        module.eval()
    try:
        unique = list({item.key: item for item in items}.values())
        with torch.inference_mode():
            embedded, keys, _ = _embedded(run, unique)
        row = {key: i for i, key in enumerate(keys)}
        pooled = embedded.pooled.float().cpu()
        out = torch.zeros(len(items), pooled.shape[1])
        for i, item in enumerate(items):
            if item.key in row:
                out[i] = pooled[row[item.key]]
        return out
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)


def _retrieval(run: Any, items: Sequence[Any]) -> dict[str, Any]:
    from vtzoo.operators.base import Embeddings
    from vtzoo.pipelines.evaluation import retrieval_metrics

    family, op = run.family, run.op
    by_key = {item.key: item for item in items}
    videos, keys, failed = _embedded(run, items)
    queries = [(text, v) for v, key in enumerate(keys) for text in family.eval_texts(by_key[key])]
    if not keys or not queries:
        raise VtzooError(f"nothing to evaluate: {len(keys)} video(s) decoded, {len(queries)} caption(s)")
    texts = [t for t, _ in queries]
    step = max(1, run.batch_size * 4)
    text_emb = Embeddings.concat([family.embed_text(op, texts[i : i + step]) for i in range(0, len(texts), step)])
    scores = op.similarity(text_emb, videos).float().cpu()
    metrics = retrieval_metrics(scores, [v for _, v in queries])
    out: dict[str, Any] = {}
    for direction in ("t2v", "v2t"):
        m = metrics[direction]
        out.update({f"{direction}_r1": m["R@1"] / 100, f"{direction}_r5": m["R@5"] / 100,
                    f"{direction}_r10": m["R@10"] / 100, f"{direction}_mdr": m["MdR"], f"{direction}_mnr": m["MnR"]})
    out.update(videos=len(keys), texts=len(texts), failed=len(failed))
    return out


def _classification(run: Any, items: Sequence[Any]) -> dict[str, Any]:
    labels = run.labels
    index = {label: i for i, label in enumerate(labels)}
    ranks, failed = [], []
    for batch in eval_batches(run, [item for item in items if item.label in index]):
        failed += batch["failed"]
        if batch["size"]:
            predictions = run.family.predict(run.op, batch, labels)
            for ranked, key_label in zip(predictions, batch["label"]):
                truth = index[key_label]
                ranks.append(ranked.index(truth) + 1 if truth in ranked else len(labels) + 1)
    run.note_failures(failed)
    if not ranks:
        raise VtzooError("nothing to evaluate: no labelled video could be decoded")
    n = len(ranks)
    return {"top1": sum(r <= 1 for r in ranks) / n, "top5": sum(r <= 5 for r in ranks) / n, "videos": n,
            "failed": len(failed)}
