"""Zero-shot JetClass accuracy of the converted community checkpoints on the project's own jets.

A network trained on the real JetClass (Delphes) recognises simulated jets about as well as
JetClass's own only if the simulation is faithful: this is the measure. The script simulates (or
reuses) ten-class jets with a detector card and a seed, scores them with each checkpoint through
the project's API (``load_pretrained`` -> ``evaluation_dataset`` -> ``predict``), and writes the
overall and per-class accuracy and the confusion matrix as JSON and markdown.

    python benchmarks/zero_shot_jetclass.py                  # DEFAULT_CARD (jetclass), seed 4242
    python benchmarks/zero_shot_jetclass.py --card default   # the earlier parametrized detector

Simulated shards are kept in ``data/zero_shot_jetclass/<card>-seed<seed>/`` (a rerun reuses
them; the simulation's request, card included, is checked by the runner).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from foundation import load_pretrained  # noqa: E402
from foundation.data.loading import make_loader  # noqa: E402
from foundation.data.schema import JETCLASS_LABELS  # noqa: E402
from foundation.evaluation.inputs import evaluation_dataset  # noqa: E402
from foundation.evaluation.predict import predict  # noqa: E402
from foundation.simulation.card import DEFAULT_CARD  # noqa: E402

CHECKPOINTS = (
    "particlenet.jetclass-kin",
    "particlenet.jetclass-kinpid",
    "particlenet.jetclass-full",
)
HEAD = "jetclass"
SHORT = {name: name.removeprefix("label_") for name in JETCLASS_LABELS}


def simulate_jets(
    card: str, seed: int, jets_per_class: int, folder: Path, workers: int
) -> list[Path]:
    """The ten-class shards (made now, or reused when the same request made them before)."""
    from foundation.simulation.card import load_card
    from foundation.simulation.processes import resolve_processes
    from foundation.simulation.runner import plan_shards, run_shards

    specs = plan_shards(
        resolve_processes("jetclass"), jets_per_class, folder, seed, load_card(card), 5000, None
    )
    made = run_shards(specs, workers=workers, overwrite=False, show_progress=False)
    print(f"{len(specs)} shards in {folder} ({len(specs) - len(made)} reused)", flush=True)
    return [spec.path for spec in specs]


def score(checkpoint: str, files: Sequence[Path], batch_size: int) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix of one checkpoint on ``files``."""
    model = load_pretrained(checkpoint)
    start = time.perf_counter()
    with evaluation_dataset(model, files) as dataset:
        outputs = predict(model, make_loader(dataset, batch_size=batch_size), heads=[HEAD])
    seconds = time.perf_counter() - start
    arrays = outputs[HEAD].arrays
    labels, predicted = arrays["labels"], arrays["scores"].argmax(axis=1)
    names = outputs[HEAD].label_names
    keep = labels >= 0
    labels, predicted = labels[keep], predicted[keep]
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {
        name: float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None
        for i, name in enumerate(names)
    }
    return {
        "checkpoint": checkpoint,
        "sha256": model.source["sha256"] if model.source else None,
        "jets": int(keep.sum()),
        "accuracy": float((labels == predicted).mean()),
        "per_class_accuracy": per_class,
        "confusion": confusion.tolist(),
        "label_names": list(names),
        "seconds": round(seconds, 1),
    }


def markdown(results: Sequence[dict[str, Any]], header: dict[str, Any]) -> str:
    """The report: one accuracy table, then a confusion matrix per checkpoint."""
    names = results[0]["label_names"]
    lines = [
        f"# Zero-shot JetClass accuracy: detector card `{header['card']}`, seed {header['seed']}",
        "",
        f"{header['jets']} simulated jets ({header['jets_per_class']} per class), card "
        f"{header['card_name']} (digest {header['card_digest']}); command: `{header['command']}`.",
        "",
        "| checkpoint | accuracy | " + " | ".join(SHORT.get(n, n) for n in names) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in names) + " |",
    ]
    for result in results:
        cells = [
            "-"
            if result["per_class_accuracy"][n] is None
            else f"{result['per_class_accuracy'][n]:.3f}"
            for n in names
        ]
        lines.append(
            f"| {result['checkpoint']} | {result['accuracy']:.3f} | " + " | ".join(cells) + " |"
        )
    for result in results:
        lines += [
            "",
            f"## Confusion matrix of {result['checkpoint']} (rows: true class, columns: predicted)",
            "",
            "| true \\ predicted | " + " | ".join(SHORT.get(n, n) for n in names) + " |",
            "| --- | " + " | ".join("---:" for _ in names) + " |",
        ]
        for name, row in zip(names, result["confusion"], strict=True):
            lines.append(f"| {SHORT.get(name, name)} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--card",
        default=DEFAULT_CARD,
        help=f"detector card: shipped name or YAML (default {DEFAULT_CARD}; the README's "
        "table compares it with `--card default`)",
    )
    parser.add_argument("--seed", type=int, default=4242, help="simulation seed")
    parser.add_argument("--jets-per-class", type=int, default=200, help="jets per class")
    parser.add_argument(
        "--data", type=Path, help="shard folder (default data/zero_shot_jetclass/CARD-seedSEED)"
    )
    parser.add_argument(
        "--checkpoints", default=",".join(CHECKPOINTS), help="comma-separated names"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output stem (default benchmarks/results/zero_shot_jetclass_CARD_seedSEED)",
    )
    parser.add_argument("--workers", type=int, default=1, help="simulation processes")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    card_label = Path(args.card).stem
    folder = args.data or ROOT / "data" / "zero_shot_jetclass" / f"{card_label}-seed{args.seed}"
    stem = (
        args.out
        or ROOT / "benchmarks" / "results" / f"zero_shot_jetclass_{card_label}_seed{args.seed}"
    )
    files = simulate_jets(args.card, args.seed, args.jets_per_class, folder, args.workers)
    results = []
    for checkpoint in args.checkpoints.split(","):
        result = score(checkpoint, files, args.batch_size)
        results.append(result)
        print(
            f"{checkpoint}: accuracy {result['accuracy']:.4f} on {result['jets']} jets", flush=True
        )
    from foundation.simulation.writer import read_metadata

    simulated = read_metadata(files[0])
    header = {
        "card": args.card,
        "card_name": (simulated.get("card") or {}).get("name"),
        "card_digest": simulated.get("card_digest"),
        "seed": args.seed,
        "jets_per_class": args.jets_per_class,
        "jets": results[0]["jets"],
        "command": " ".join(
            ["python benchmarks/zero_shot_jetclass.py", *(sys.argv[1:] if argv is None else argv)]
        ),
    }
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(
        json.dumps({**header, "results": results}, indent=2) + "\n"
    )
    stem.with_suffix(".md").write_text(markdown(results, header))
    print(markdown(results, header))
    print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
