"""argparse wiring for `heartsong corpus build`, `heartsong train` and `heartsong eval-generator`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _corpus_build(args: argparse.Namespace) -> int:
    from generators.model.corpus import build_corpus, corpus_summary, load_corpus

    path = build_corpus(include_essen=args.essen, limit=args.limit, progress=not args.quiet, workers=args.workers,
                        force=args.force)
    print(path)
    print(json.dumps(corpus_summary(load_corpus(path)), indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    from generators.model.corpus import build_corpus
    from generators.model.train import train

    corpus = args.corpus or build_corpus(include_essen=args.essen, progress=not args.quiet)
    summary = train(corpus, out=args.out, max_steps=args.steps, max_minutes=args.minutes, seed=args.seed,
                    progress=not args.quiet)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from generators.model.evaluate import evaluate_generator, print_report

    report = evaluate_generator(corpus=args.corpus, passages=args.passages, grid_per_cell=args.grid,
                                seed=args.seed, speed_seconds=args.speed_seconds, progress=not args.quiet)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def add_subcommands(subparsers) -> None:
    """Add `corpus build`, `train` and `eval-generator` to an argparse subparsers object; each parser's
    ``func`` takes the parsed namespace and returns an exit code."""
    from generators.model.train import CHECKPOINT, MAX_MINUTES, MAX_STEPS, SEED

    corpus = subparsers.add_parser("corpus", help="build the training corpus from music21's collections")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    build = corpus_sub.add_parser("build", help="parse, quantise and cache the corpus (npz, user cache dir)")
    build.add_argument("--essen", action="store_true",
                       help="include the Essen folksongs (licence: non-commercial use only)")
    build.add_argument("--limit", type=int, default=None, help="parse only this many files (quick runs)")
    build.add_argument("--workers", type=int, default=2, help="parser processes (default 2)")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    build.add_argument("--quiet", action="store_true")
    build.set_defaults(func=_corpus_build)

    tr = subparsers.add_parser("train", help="train the melody model and write the checkpoint")
    tr.add_argument("--corpus", type=Path, default=None, help="corpus npz (default: build or reuse the cache)")
    tr.add_argument("--essen", action="store_true", help="train on the corpus that includes Essen")
    tr.add_argument("--out", type=Path, default=CHECKPOINT, help=f"checkpoint path (default {CHECKPOINT})")
    tr.add_argument("--steps", type=int, default=MAX_STEPS)
    tr.add_argument("--minutes", type=float, default=MAX_MINUTES, help="wall-clock cap")
    tr.add_argument("--seed", type=int, default=SEED)
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(func=_train)

    ev = subparsers.add_parser("eval-generator", help="control adherence, similarity and speed report")
    ev.add_argument("--json", action="store_true", help="print the report as JSON")
    ev.add_argument("--corpus", type=Path, default=None)
    ev.add_argument("--passages", type=int, default=120, help="held-out 8-bar passages for similarity")
    ev.add_argument("--grid", type=int, default=2, help="adherence passages per (mode, density) cell")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--speed-seconds", type=float, default=5.0, help="CPU seconds per speed run (0 = skip)")
    ev.add_argument("--quiet", action="store_true", help="no progress bar while the corpus cache is built")
    ev.set_defaults(func=_eval)
