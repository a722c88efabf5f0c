"""``foundation baseline``: gradient-boosted trees on jet substructure, scored like a model."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``baseline`` sub-command."""
    from foundation.cli.evaluate import bins_argument

    parser = subparsers.add_parser(
        "baseline",
        help="train and evaluate gradient-boosted trees on jet substructure",
        description=(
            "Train a HistGradientBoosting classifier (jet label) or regressor (particle-level "
            "jet pT or mass) on substructure observables of the --train jets, evaluate it on "
            "the --test jets with the metrics of 'foundation evaluate', and write metrics.json, "
            "plots, baseline.json (the config: retraining on the same files gives the same "
            "trees) and predictions.npz. No model file is pickled."
        ),
    )
    parser.add_argument("--train", nargs="+", required=True, metavar="FILES", help="train jets")
    parser.add_argument("--test", nargs="+", required=True, metavar="FILES", help="test jets")
    parser.add_argument(
        "--task", choices=("classification", "regression"), default="classification"
    )
    parser.add_argument(
        "--target",
        choices=("label", "jet_truth_pt", "jet_truth_mass"),
        default=None,
        help="label (classification, default) or jet_truth_pt (regression default) / "
        "jet_truth_mass",
    )
    parser.add_argument(
        "--train-size", type=int, default=None, help="training jets (stratified; default all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="subsample and boosting seed (0)")
    parser.add_argument("--max-iter", type=int, default=200, help="boosting iterations (200)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples (100)")
    parser.add_argument(
        "--pt-bins",
        type=bins_argument,
        default=5,
        metavar="N|EDGES",
        help="regression bins of true pT: a count of equal-population bins or edges (5)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``baseline`` sub-command."""
    from foundation.baselines.gbt import TARGETS, BaselineConfig, run_baseline
    from foundation.cli.evaluate import headline
    from foundation.data.readers import expand_paths, read_jets
    from foundation.evaluation.evaluate import METRICS_FILE

    target = args.target or TARGETS[args.task][0]
    config = BaselineConfig(
        task=args.task,
        target=target,
        train_size=args.train_size,
        seed=args.seed,
        max_iter=args.max_iter,
    )
    train_files, test_files = expand_paths(args.train), expand_paths(args.test)
    train, test = read_jets(train_files), read_jets(test_files)
    info = {
        "data": {
            "train": [str(path.resolve()) for path in train_files],
            "test": [str(path.resolve()) for path in test_files],
            "n_train_available": train.n_jets,
            "n_test": test.n_jets,
        }
    }
    result = run_baseline(
        train,
        test,
        config,
        args.out,
        n_bootstrap=args.bootstrap,
        bins=args.pt_bins,
        info=info,
        overwrite=args.overwrite,
    )
    print(f"gbt ({args.task}, {target}): {headline(result['heads']['gbt']['metrics'])}")
    print(f"wrote {args.out / METRICS_FILE}")
    return 0
