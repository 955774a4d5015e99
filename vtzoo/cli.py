"""The ``vtzoo`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

# Pipelines decode in threads beside torch's OpenMP workers; workers that busy-wait between
# parallel regions would take the decoders' cores (measured: pipeline/model-only throughput
# 0.85 -> 0.92 on 2 cores). Only effective before torch is imported, hence here, at the top.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

EXIT_OK, EXIT_FAILED, EXIT_PARTIAL = 0, 1, 3


def _parse_config(pairs: Sequence[str]) -> dict[str, Any]:
    """``--set key=value`` pairs; values parse as JSON when they can (numbers, lists, booleans)."""
    config: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"vtzoo: --set expects key=value, got {pair!r}")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


def _add_operator_args(parser: argparse.ArgumentParser, default_op: str | None = "clip4clip") -> None:
    parser.add_argument("--op", default=default_op, help="operator name, or name/variant (default: %(default)s)")
    parser.add_argument("--variant", default=None, help="weight card variant (default: the operator's default)")
    parser.add_argument(
        "--weights",
        default=None,
        help="card name, hf://org/repo@rev, a local folder, a checkpoint file, or 'random' (default: the card's)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="config", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field of the variant (repeatable)")


def _create(args: argparse.Namespace):
    import vtzoo

    return vtzoo.create(args.op, args.variant, weights=args.weights, device=args.device, **_parse_config(args.config))


# -- commands ---------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from vtzoo.registry.cards import list_cards
    from vtzoo.registry.operators import get_operator_class, list_operators

    for name in list_operators():
        cls = get_operator_class(name)
        variants = [c.split("/", 1)[1] for c in list_cards(name)]
        print(f"{name:16s} tasks: {', '.join(sorted(cls.tasks)) or '-'}")
        if variants:
            print(f"{'':16s} variants: {', '.join(variants)} (default: {cls.default_variant})")
    return EXIT_OK


def cmd_cards(args: argparse.Namespace) -> int:
    from vtzoo.registry.cards import get_card, list_cards

    for name in list_cards(args.operator):
        print(get_card(name).summary())
    return EXIT_OK


def cmd_card(args: argparse.Namespace) -> int:
    from vtzoo.registry.cards import get_card

    card = get_card(args.name)
    print(f"# {card.path}")
    print(card.to_yaml(), end="")
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    from vtzoo.registry.weights import prefetch

    for name in args.names:
        folder = prefetch(name)
        print(f"{name}: cached in {folder}")
    return EXIT_OK


def cmd_verify_golden(args: argparse.Namespace) -> int:
    from vtzoo.registry.golden import verify

    ok = verify(args.cases, emit=lambda line: print(line, flush=True))
    return EXIT_OK if ok else EXIT_FAILED


def cmd_embed(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from vtzoo.batching import embed_videos
    from vtzoo.operators.base import Embeddings

    op = _create(args)
    result = embed_videos(op, args.videos, batch_size=args.batch_size, progress=not args.quiet)
    _report_failures(result.failures)
    done = [v for v in args.videos if v in result.embeddings]
    if not done:
        print("vtzoo embed: no video could be embedded", file=sys.stderr)
        return EXIT_FAILED
    merged = Embeddings.concat([result.embeddings[v] for v in done])
    tensors = {"pooled": merged.pooled.contiguous()}
    if merged.tokens is not None:
        tensors["tokens"] = merged.tokens.contiguous()
        tensors["mask"] = merged.mask.contiguous()
    metadata = {"operator": op.name, "variant": op.card.variant if op.card else "", "videos": json.dumps(done)}
    save_file(tensors, args.output, metadata=metadata)
    print(f"wrote {len(done)} embeddings ({tuple(merged.pooled.shape)}) to {args.output}")
    return EXIT_PARTIAL if result.failures else EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    if len(args.terms) == 1:
        return _search_index(args, args.terms[0])
    if len(args.terms) != 2:
        raise SystemExit("vtzoo search: give QUERY (search the index) or DIR QUERY (search a folder)")
    from vtzoo.folder_search import search_folder

    directory, query = args.terms
    op = _create(args)
    result = search_folder(
        op, directory, query, top_k=args.top_k, cache_dir=args.cache_dir,
        batch_size=args.batch_size, progress=not args.quiet,
    )
    _report_failures(result.failures)
    print(f"# {query!r}: {len(result.ranking)} results ({result.embedded} embedded, {result.from_cache} from cache)")
    for rank, (path, score) in enumerate(result.ranking, 1):
        print(f"{rank:3d}. {score:9.4f}  {path}")
    return EXIT_PARTIAL if result.failures else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from vtzoo.demo import run_demo

    return run_demo(args)


# -- pipelines --------------------------------------------------------------------------------
def _load_pipeline(spec: str, overrides: Sequence[str], db: str | None = None):
    from vtzoo.pipelines import Pipeline, PipelineSpec
    from vtzoo.pipelines.catalog import catalog_path

    data = PipelineSpec.from_yaml(catalog_path(spec)).to_dict()
    steps = {step["name"]: step for step in data["steps"]}
    for pair in overrides:
        target, sep, value = pair.partition("=")
        step_name, dot, key = target.partition(".")
        if not sep or not dot or step_name not in steps:
            raise SystemExit(f"vtzoo: --set expects STEP.KEY=VALUE with STEP one of {', '.join(steps)}, got {pair!r}")
        value_parsed = _parse_config([f"x={value}"])["x"]
        if key in ("batch_size", "workers", "on_error"):
            steps[step_name][key] = value_parsed
        else:
            steps[step_name].setdefault("params", {})[key] = value_parsed
    if db is not None:
        for step in data["steps"]:
            if str(step["op"]).startswith("index."):
                step.setdefault("params", {})["db"] = db
    return Pipeline.from_spec(PipelineSpec.from_dict(data))


def _report_run(result) -> None:
    for failure in result.failures:
        print(f"vtzoo: failed: {failure}", file=sys.stderr)
    if result.failures:
        print(f"vtzoo: {len(result.failures)} input(s) failed; the others finished", file=sys.stderr)


def cmd_index(args: argparse.Namespace) -> int:
    from vtzoo.folder_search import find_videos

    pipe = _load_pipeline(args.pipeline, args.set, db=args.db)
    videos = [str(p) for p in find_videos(args.directory)]
    result = pipe.run(videos, job_store=args.job_store, progress=not args.quiet)
    _report_run(result)
    print(f"indexed {len(result.rows)} item(s) from {len(videos)} video(s) into {args.db or 'the spec database'}"
          f"{f' ({result.resumed} already done)' if result.resumed else ''}")
    return EXIT_PARTIAL if result.failures else EXIT_OK


def _search_index(args: argparse.Namespace, query: str) -> int:
    pipe = _load_pipeline(args.pipeline, args.set, db=args.db)
    for step in pipe.spec.steps:
        if step.op == "index.search":
            step.params["top_k"] = args.top_k
    row = pipe(query)
    hits = row["hits"] if isinstance(row, dict) else []
    print(f"# {query!r}: {len(hits)} results")
    for rank, hit in enumerate(hits, 1):
        window = f" [{hit['start']:.1f}s-{hit['end']:.1f}s]" if hit.get("end") else ""
        print(f"{rank:3d}. {hit['score']:9.4f}  {hit['path']}{window}")
    return EXIT_OK


def _jsonable(value: Any) -> Any:
    import torch

    from vtzoo.operators.base import Embeddings

    if isinstance(value, Embeddings):
        return {"pooled": value.pooled.tolist()}
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def cmd_run(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args.spec, args.set, db=args.db)
    items = list(args.input)
    if args.inputs_file:
        items += [line.strip() for line in Path(args.inputs_file).read_text().splitlines() if line.strip()]
    if not items:
        raise SystemExit("vtzoo run: give at least one --input (or --inputs-file)")
    result = pipe.run(items, job_store=args.job_store, progress=not args.quiet)
    _report_run(result)
    out = open(args.output, "w") if args.output else sys.stdout
    try:
        for row in result.rows:
            print(json.dumps(_jsonable(row)), file=out)
    finally:
        if out is not sys.stdout:
            out.close()
    return EXIT_PARTIAL if result.failures else EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from vtzoo.pipelines.evaluation import evaluate_retrieval

    pipe = _load_pipeline(args.pipeline, args.set)
    report = evaluate_retrieval(pipe, args.dataset, progress=not args.quiet)
    for failure in report.failures:
        print(f"vtzoo: failed: {failure}", file=sys.stderr)
    print(json.dumps(report.metrics, indent=2))
    return EXIT_PARTIAL if report.failures else EXIT_OK


def _report_failures(failures: dict[str, str]) -> None:
    for source, reason in failures.items():
        print(f"vtzoo: skipped {source}: {reason}", file=sys.stderr)
    if failures:
        print(f"vtzoo: {len(failures)} input(s) failed; the others finished", file=sys.stderr)


# -- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vtzoo", description="Video-text operators: embed, search, verify.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="registered operators, their tasks and variants").set_defaults(func=cmd_list)

    p = sub.add_parser("cards", help="list the weight cards")
    p.add_argument("operator", nargs="?", help="only this operator's cards")
    p.set_defaults(func=cmd_cards)

    p = sub.add_parser("card", help="show one weight card")
    p.add_argument("name", help="operator/variant")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("download", help="prefetch a card's weights (and tokenizer) for offline use")
    p.add_argument("names", nargs="+", help="operator/variant card names")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("verify-golden", help="check parity with an original implementation's outputs")
    p.add_argument("cases", nargs="+", help="golden case folders")
    p.set_defaults(func=cmd_verify_golden)

    p = sub.add_parser("embed", help="embed videos into a .safetensors file")
    p.add_argument("videos", nargs="+")
    p.add_argument("-o", "--output", default="embeddings.safetensors")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_operator_args(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("search", help="search the index (QUERY) or rank the videos of a folder (DIR QUERY)")
    p.add_argument("terms", nargs="+", metavar="[DIR] QUERY")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--db", default=None, help="index database: a Milvus Lite file or a Milvus URI (default: the spec's, ./vtzoo.db)")
    p.add_argument("--pipeline", default="text_video_query", help="query spec (catalog name or file) for index search")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default: $VTZOO_CACHE or ~/.cache/vtzoo)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_operator_args(p)
    p.add_argument("--step-set", dest="set", action="append", default=[], metavar="STEP.KEY=VALUE",
                   help="override a step parameter of the query spec (repeatable)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("index", help="index the videos of a folder into a vector database")
    p.add_argument("directory")
    p.add_argument("--pipeline", default="text_video_index", help="index spec: catalog name or YAML file")
    p.add_argument("--db", default=None, help="Milvus Lite file or Milvus URI (default: the spec's, ./vtzoo.db)")
    p.add_argument("--job-store", default=None, help="SQLite file that makes the job resumable")
    p.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE", help="override a step parameter")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("run", help="run a pipeline spec over inputs; prints one JSON line per output row")
    p.add_argument("spec", help="YAML file or catalog name")
    p.add_argument("--input", action="append", default=[], help="an input item (repeatable)")
    p.add_argument("--inputs-file", default=None, help="a file with one input per line")
    p.add_argument("--db", default=None)
    p.add_argument("--job-store", default=None)
    p.add_argument("-o", "--output", default=None, help="write the JSON lines here instead of stdout")
    p.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("eval", help="text-video retrieval metrics of a pipeline on a captioned dataset")
    p.add_argument("--pipeline", default="text_video_index", help="spec whose embed_video step embeds the videos")
    p.add_argument("--dataset", required=True, help="DIR with videos/ and captions.json or captions.csv")
    p.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="the main job: index sample videos into Milvus Lite, then search them by text")
    p.add_argument("--dir", default="samples/videos", help="where the sample videos go (default: %(default)s)")
    p.add_argument("--db", default=None, help="index database (default: vtzoo.db beside the videos' folder)")
    p.add_argument("--query", action="append", default=None, help="text query (repeatable)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--weights", default=None, help="CLIP4Clip weights (default: the card's, else random)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from vtzoo.errors import VtzooError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (VtzooError, FileNotFoundError) as exc:
        print(f"vtzoo {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
