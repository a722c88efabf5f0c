"""Golden outputs of the shipped checkpoints: a few numbers per head on fixed, seeded jets.

``tests/test_golden.py`` checks that every folder under ``checkpoints/`` still gives these
outputs (to 1e-5 relative), so that a refactor of the backbones, heads, feature computation,
normalization or loading that changes what a shipped model says is caught.

Regenerate (only when a change of the outputs is intended, e.g. a new or re-trained
checkpoint; say why in the commit)::

    python tests/golden/make_golden.py

The input jets are ``random_records(JETS, seed=SEED)`` made into each checkpoint's own inputs
(its feature names and normalization) by :func:`foundation.inference.to_batch`. The file
stores a checksum of those inputs too, so that a change of the random jets (numpy's
generator) is reported as such and not as a change of the model.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO / "checkpoints"
GOLDEN_FILE = Path(__file__).with_name("shipped_outputs.json")
JETS = 3
"""Jets of the fixed batch (their outputs are stored)."""
SEED = 20261201
MAX_PARTICLES = 64
NUMBERS = 4
"""Numbers kept per jet and head output: its first values, row-major."""


def shipped_checkpoints() -> list[Path]:
    """Every checkpoint folder under ``checkpoints/`` (with a config.json), sorted."""
    return sorted(path.parent for path in CHECKPOINTS.glob("*/config.json"))


def _significant(value: float) -> float:
    return float(f"{value:.8g}") if math.isfinite(value) else value


def golden_outputs(folder: Path) -> dict[str, Any]:
    """The input checksum and the first outputs of every head of the checkpoint at ``folder``.

    Returns:
        ``{"inputs": {"particles_sum", "jet_sum", "real_particles"}, "outputs":
        {head: {output: [[numbers of jet 0], [of jet 1], [of jet 2]]}}}``.
    """
    from synthetic import random_records

    from foundation import load_pretrained
    from foundation.inference import to_batch

    model = load_pretrained(folder).eval()
    records = random_records(JETS, mean_particles=20.0, seed=SEED)
    batch = to_batch(records, model, max_particles=MAX_PARTICLES)
    with torch.no_grad():
        outputs = model(batch)
    inputs = {
        "particles_sum": _significant(float(batch.particles.double().sum())),
        "jet_sum": _significant(float(batch.jet.double().sum())),
        "real_particles": int(batch.mask.sum()),
    }
    numbers = {
        head: {
            name: [
                [_significant(float(v)) for v in row[:NUMBERS]]
                for row in tensor[:JETS].double().reshape(JETS, -1)
            ]
            for name, tensor in sorted(values.items())
        }
        for head, values in sorted(outputs.items())
    }
    return {"inputs": inputs, "outputs": numbers}


def main() -> int:
    """Write :data:`GOLDEN_FILE` from every shipped checkpoint."""
    golden = {folder.name: golden_outputs(folder) for folder in shipped_checkpoints()}
    if not golden:
        print(f"no checkpoint found under {CHECKPOINTS}", file=sys.stderr)
        return 1
    from foundation.io import write_json

    write_json(GOLDEN_FILE, golden)
    print(f"wrote {GOLDEN_FILE} ({', '.join(golden)})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "tests"))  # synthetic.py, as pytest finds it
    sys.exit(main())
