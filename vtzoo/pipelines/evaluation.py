"""Retrieval and classification metrics, computed the way the papers report them.

Retrieval takes a (n_text, n_video) score matrix and, for every text, the index of its video
(several captions per video allowed, as in MSR-VTT's full split or DiDeMo's paragraphs-as-captions):

* text -> video: for each caption, the rank (1 = best) of its own video among all videos;
* video -> text: for each video, the best rank any of its own captions reaches among all
  captions (the convention of the multi-caption evaluations of CLIP4Clip and its successors).

R@K is the percentage of queries whose rank is <= K; MdR and MnR are the median and mean rank.
Ties are broken pessimistically (a tie with a wrong item counts against the query), so a
constant score matrix never looks good.

A video that could not be embedded is not quietly left out: its captions are misses in
text -> video and the video a miss in video -> text (a miss has no rank: never within any K,
last in the median, and the mean rank is then undefined); the metrics over the embedded part
are reported beside them.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from vtzoo.errors import VtzooError


class EvaluationError(VtzooError, ValueError):
    pass


def _ranks_of(scores: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """Per row: 1 + number of columns scoring >= the correct column, other than itself."""
    target = scores.gather(1, correct.view(-1, 1))
    better_or_tied = (scores >= target).sum(dim=1)
    return better_or_tied.to(torch.float64)  # includes the correct one itself -> rank >= 1


def rank_summary(ranks: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float | None]:
    """R@K, MdR, MnR; infinite ranks are misses (then MnR is None and ``missed`` counts them)."""
    ranks = ranks.to(torch.float64)
    out: dict[str, float | None] = {f"R@{k}": float((ranks <= k).double().mean() * 100) for k in ks}
    missed = int(torch.isinf(ranks).sum())
    # the median as numpy takes it (the mean of the middle two for an even count), misses last
    ordered = ranks.sort().values
    middle = (len(ordered) - 1) / 2
    median = (ordered[math.floor(middle)] + ordered[math.ceil(middle)]) / 2
    out["MdR"] = None if math.isinf(median) else float(median)
    out["MnR"] = None if missed else float(ranks.mean())
    if missed:
        out["missed"] = missed
    return out


def text_to_video_ranks(scores: torch.Tensor, text_to_video: Sequence[int]) -> torch.Tensor:
    scores = torch.as_tensor(scores, dtype=torch.float64)
    correct = torch.as_tensor(list(text_to_video), dtype=torch.long)
    if scores.shape[0] != len(correct):
        raise EvaluationError(f"{scores.shape[0]} texts in the score matrix but {len(correct)} caption->video indices")
    if len(correct) and (int(correct.max()) >= scores.shape[1] or int(correct.min()) < 0):
        raise EvaluationError(f"a caption points at video index {int(correct.max())}, but there are {scores.shape[1]} videos")
    return _ranks_of(scores, correct)


def video_to_text_ranks(scores: torch.Tensor, text_to_video: Sequence[int]) -> torch.Tensor:
    """For each video, the best rank among its own captions when all captions are ranked for it."""
    scores = torch.as_tensor(scores, dtype=torch.float64).T  # (n_video, n_text)
    owners = torch.as_tensor(list(text_to_video), dtype=torch.long)
    ranks = []
    for video in range(scores.shape[0]):
        own = (owners == video).nonzero().flatten()
        if len(own) == 0:
            raise EvaluationError(f"video {video} has no caption; every video needs at least one for video->text")
        row = scores[video]
        others = row[owners != video]
        best = row[own].max()
        # rank of the best own caption: 1 + wrong captions scoring >= it
        ranks.append(1.0 + float((others >= best).sum()))
    return torch.tensor(ranks, dtype=torch.float64)


def retrieval_metrics(
    scores: torch.Tensor, text_to_video: Sequence[int] | None = None, missing_videos: Sequence[int] = ()
) -> dict[str, dict]:
    """``{"t2v": {...}, "v2t": {...}}`` with R@1/5/10, MdR and MnR. Default: caption i <-> video i.

    ``missing_videos`` are videos that could not be embedded (their columns are ignored): their
    captions and they themselves count as misses, and ``"embedded_only"`` gives the metrics over
    the rest alone.
    """
    scores = torch.as_tensor(scores)
    if text_to_video is None:
        if scores.shape[0] != scores.shape[1]:
            raise EvaluationError("a non-square score matrix needs text_to_video (the video of each caption)")
        text_to_video = list(range(scores.shape[0]))
    if not missing_videos:
        return {
            "t2v": rank_summary(text_to_video_ranks(scores, text_to_video)),
            "v2t": rank_summary(video_to_text_ranks(scores, text_to_video)),
        }
    missing = set(missing_videos)
    present = [v for v in range(scores.shape[1]) if v not in missing]
    column = {video: i for i, video in enumerate(present)}
    owners = [column.get(v, -1) for v in text_to_video]  # -1: a caption of a missing video
    kept = [i for i, owner in enumerate(owners) if owner >= 0]
    on_present = scores[:, present]
    t2v = torch.full((len(owners),), math.inf, dtype=torch.float64)
    t2v[kept] = text_to_video_ranks(on_present[kept], [owners[i] for i in kept])
    v2t = torch.cat([video_to_text_ranks(on_present, owners), torch.full((len(missing),), math.inf, dtype=torch.float64)])
    return {
        "t2v": rank_summary(t2v),
        "v2t": rank_summary(v2t),
        "embedded_only": retrieval_metrics(on_present[kept], [owners[i] for i in kept]),
    }


def topk_accuracy(logits: torch.Tensor, labels: Sequence[int], ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy in percent; ties at the k-th place count against the prediction."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    labels_t = torch.as_tensor(list(labels), dtype=torch.long)
    ranks = _ranks_of(logits, labels_t)
    return {f"top{k}": float((ranks <= k).double().mean() * 100) for k in ks}


def label_accuracy(predictions: Sequence[Sequence[str]], truth: Sequence[str], ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy from ranked label lists (what ``Operator.classify`` returns, labels only)."""
    if len(predictions) != len(truth):
        raise EvaluationError(f"{len(predictions)} predictions for {len(truth)} labels")
    return {f"top{k}": 100.0 * sum(t in list(p)[:k] for p, t in zip(predictions, truth)) / max(1, len(truth)) for k in ks}


# -- datasets ---------------------------------------------------------------------------------
@dataclass
class CaptionDataset:
    """``videos[i]`` is a path; ``captions[j]`` belongs to ``videos[caption_video[j]]``."""

    videos: list[Path]
    captions: list[str]
    caption_video: list[int]


def load_caption_dataset(directory: str | Path) -> CaptionDataset:
    """Read DIR/captions.json (``{"video.mp4": ["a caption", ...]}``) or DIR/captions.csv
    (columns ``video,caption``, one row per caption); videos are found in DIR/videos/ or DIR/."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EvaluationError(f"dataset {directory} is not a directory")
    pairs = _read_caption_pairs(directory)
    video_dir = directory / "videos" if (directory / "videos").is_dir() else directory
    videos: list[Path] = []
    index: dict[str, int] = {}
    captions, owners = [], []
    for name, caption in pairs:
        path = video_dir / name
        if not path.is_file():
            raise EvaluationError(f"dataset {directory}: caption file names video '{name}', not found in {video_dir}")
        if name not in index:
            index[name] = len(videos)
            videos.append(path)
        captions.append(caption)
        owners.append(index[name])
    if not captions:
        raise EvaluationError(f"dataset {directory}: no captions")
    return CaptionDataset(videos, captions, owners)


def _read_caption_pairs(directory: Path) -> list[tuple[str, str]]:
    json_file, csv_file = directory / "captions.json", directory / "captions.csv"
    if json_file.is_file():
        try:
            data = json.loads(json_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise EvaluationError(f"{json_file} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise EvaluationError(f"{json_file}: expected an object mapping video file names to caption lists")
        pairs = []
        for name, caps in data.items():
            caps = [caps] if isinstance(caps, str) else caps
            if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
                raise EvaluationError(f"{json_file}: video '{name}': captions must be a string or a list of strings")
            pairs += [(name, c) for c in caps]
        return pairs
    if csv_file.is_file():
        with csv_file.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"video", "caption"} <= set(reader.fieldnames):
                raise EvaluationError(f"{csv_file}: needs the columns 'video' and 'caption'")
            return [(row["video"], row["caption"]) for row in reader]
    raise EvaluationError(f"dataset {directory}: no captions.json or captions.csv")


# -- evaluating a pipeline --------------------------------------------------------------------
@dataclass
class EvalReport:
    metrics: dict
    failures: list
    # what the metrics were computed from, for per-query reports: scores (n_captions, n_videos),
    # videos[j] the path of column j, captions[i] the text of row i and caption_video[i] its video
    scores: torch.Tensor | None = None
    videos: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    caption_video: list[int] = field(default_factory=list)


def evaluate_retrieval(pipe, dataset: str | Path, text_batch_size: int = 64, progress: bool = True) -> EvalReport:
    """Embed a captioned dataset's videos with ``pipe`` (up to its ``*.embed_video`` step), embed the
    captions with the same operator, score with its own similarity, and compute R@K / MdR / MnR.

    A video that fails is reported; its captions count as misses (see :func:`retrieval_metrics`),
    and ``metrics["embedded_only"]`` and ``metrics["excluded"]`` give the part without it."""
    from vtzoo.embeddings import Embeddings
    from vtzoo.pipelines.pipeline import Pipeline
    from vtzoo.pipelines.spec import PipelineSpec

    data = load_caption_dataset(dataset)
    steps = pipe.spec.steps
    position = next((i for i, s in enumerate(steps) if isinstance(s.op, str) and s.op.endswith(".embed_video")), None)
    if position is None:
        raise EvaluationError("the pipeline has no '<operator>.embed_video' step to evaluate")
    embed = steps[position]
    spec = PipelineSpec(inputs=pipe.spec.inputs, steps=steps[: position + 1], outputs=[*pipe.spec.inputs, embed.outputs[0]],
                        name=f"{pipe.spec.name or 'pipeline'} (eval)")
    videos_pipe = Pipeline.from_spec(spec)
    result = videos_pipe.run([str(v) for v in data.videos], progress=progress)
    embedded = {row[spec.inputs[0]]: row[embed.outputs[0]] for row in result.rows}
    kept = [i for i, v in enumerate(data.videos) if str(v) in embedded]
    if not kept:
        raise EvaluationError(f"no video of {dataset} could be embedded")
    op = videos_pipe._context.step_operator(embed)
    video_emb = Embeddings.concat([embedded[str(data.videos[i])] for i in kept])
    texts = data.captions  # every caption, also those of videos that failed: they count as misses
    text_emb = Embeddings.concat([op.embed_text(texts[i : i + text_batch_size]) for i in range(0, len(texts), text_batch_size)])
    scores = torch.full((len(texts), len(data.videos)), float("nan"))
    scores[:, kept] = op.similarity(text_emb, video_emb).float().cpu()
    failed = [i for i in range(len(data.videos)) if i not in set(kept)]
    metrics = retrieval_metrics(scores, data.caption_video, missing_videos=failed)
    metrics["counts"] = {"videos": len(data.videos), "captions": len(texts), "failed_videos": len(failed),
                         "embedded_videos": len(kept)}
    if failed:
        metrics["excluded"] = {"videos": [data.videos[i].name for i in failed],
                               "captions": sum(v in set(failed) for v in data.caption_video)}
    # the report's per-query view: the captions of the videos that were embedded, against them
    new_index = {old: new for new, old in enumerate(kept)}
    shown = [row for row, v in enumerate(data.caption_video) if v in new_index]
    return EvalReport(metrics=metrics, failures=[str(f) for f in result.failures], scores=scores[shown][:, kept],
                      videos=[str(data.videos[i]) for i in kept], captions=[texts[r] for r in shown],
                      caption_video=[new_index[data.caption_video[r]] for r in shown])
