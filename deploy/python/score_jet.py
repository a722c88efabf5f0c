"""Score one jet with an exported foundation model, using only numpy and onnxruntime.

A documented consumer of ``foundation export`` graphs, without PyTorch or this library:

    python deploy/python/score_jet.py model.onnx jet.txt [--json]

It reads the graph's metadata (feature schema, inputs, label names), reads one jet from a text
file, builds the padded inputs (batch of one, every slot real), runs ONNX Runtime and prints each
output. ``deploy/cpp/score_jet.cpp`` does the same in C++ on the same jet files.

Jet file (text, ``#`` starts a comment)::

    N F J                      # real particles, particle features, jet-level inputs
    f_1 ... f_F px py pz E     # N lines: features in the schema's order, then the 4-vector
    j_1 ... j_J                # one line, only when J > 0

Features must already be normalised as the metadata's ``feature_schema.normalization`` says
(the consumer prints it); 4-vectors are in GeV. ``mask`` is a bool tensor (True = real).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort


def write_jet(
    path: str | Path, particles: np.ndarray, vectors: np.ndarray, jet: np.ndarray | None = None
) -> Path:
    """Write one jet in the text format above.

    Shapes:
        - particles: ``[N, F]``; vectors: ``[N, 4]``; jet: ``[J]`` (or None)
    """
    particles = np.asarray(particles, dtype=np.float32).reshape(len(vectors), -1)
    vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, 4)
    jet = np.zeros(0, np.float32) if jet is None else np.asarray(jet, np.float32).reshape(-1)
    lines = ["# foundation jet: N F J, then N lines of features + (px py pz E), then jet inputs"]
    lines.append(f"{len(vectors)} {particles.shape[1]} {len(jet)}")
    lines += [
        " ".join(f"{value:.9g}" for value in (*row, *vector))
        for row, vector in zip(particles, vectors, strict=True)
    ]
    if len(jet):
        lines.append(" ".join(f"{value:.9g}" for value in jet))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def read_jet(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read one jet: ``(particles [N, F], vectors [N, 4], jet [J])``, float32.

    Raises:
        ValueError: the file does not follow the format (the message names the line).
    """
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].split()
        if text:
            rows.append((number, text))
    if not rows or len(rows[0][1]) != 3:
        raise ValueError(f"{path}: the first line must be 'N F J' (three integers)")
    count, width, jet_width = (int(value) for value in rows[0][1])
    expected = 1 + count + (1 if jet_width else 0)
    if len(rows) != expected:
        raise ValueError(f"{path}: expected {expected} data lines for N={count}, found {len(rows)}")
    table = []
    for number, values in rows[1 : 1 + count]:
        if len(values) != width + 4:
            raise ValueError(
                f"{path}: line {number}: expected {width} features + 4 vector components, "
                f"found {len(values)} values"
            )
        table.append([float(value) for value in values])
    data = np.asarray(table, dtype=np.float32).reshape(count, width + 4)
    jet = np.zeros(0, np.float32)
    if jet_width:
        number, values = rows[-1]
        if len(values) != jet_width:
            raise ValueError(f"{path}: line {number}: expected {jet_width} jet inputs")
        jet = np.asarray([float(value) for value in values], dtype=np.float32)
    return data[:, :width], data[:, width:], jet


def metadata(session: ort.InferenceSession) -> dict[str, object]:
    """The graph's ``foundation.*`` metadata, JSON values parsed."""
    raw = session.get_modelmeta().custom_metadata_map
    parsed: dict[str, object] = {}
    for key, value in raw.items():
        if key.startswith("foundation."):
            try:
                parsed[key.removeprefix("foundation.")] = json.loads(value)
            except ValueError:
                parsed[key.removeprefix("foundation.")] = value
    return parsed


def score(
    session: ort.InferenceSession, particles: np.ndarray, vectors: np.ndarray, jet: np.ndarray
) -> dict[str, np.ndarray]:
    """Run the graph on one jet (batch of one, no padding); outputs by name."""
    count = len(vectors)
    available = {
        "particles": particles.reshape(1, count, -1).astype(np.float32),
        "vectors": vectors.reshape(1, count, 4).astype(np.float32),
        "mask": np.ones((1, count), dtype=bool),
        "jet": jet.reshape(1, -1).astype(np.float32),
    }
    inputs = [node.name for node in session.get_inputs()]
    unknown = [name for name in inputs if name not in available]
    if unknown:
        raise ValueError(
            f"the graph takes {unknown}: an embeddings-only export cannot score raw jets"
        )
    names = [node.name for node in session.get_outputs()]
    values = session.run(names, {name: available[name] for name in inputs})
    return dict(zip(names, values, strict=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="an .onnx file written by 'foundation export'")
    parser.add_argument("jet", type=Path, help="a jet file (see the module docstring)")
    parser.add_argument("--json", action="store_true", help="print the outputs as JSON")
    args = parser.parse_args(argv)
    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    info = metadata(session)
    particles, vectors, jet = read_jet(args.jet)
    schema = info.get("feature_schema") or {}
    expected = len(schema.get("particle_features", [])) if isinstance(schema, dict) else None
    if expected and particles.shape[1] != expected:
        print(
            f"error: {args.jet}: {particles.shape[1]} particle features, the model takes "
            f"{expected}: {', '.join(schema['particle_features'])}",
            file=sys.stderr,
        )
        return 1
    outputs = score(session, particles, vectors, jet)
    if args.json:
        print(json.dumps({name: value.tolist() for name, value in outputs.items()}))
        return 0
    print(f"model: {args.model} (foundation {info.get('library_version', '?')})")
    if isinstance(schema, dict):
        print(f"particle features: {', '.join(schema.get('particle_features', []))}")
        print(f"normalization: {json.dumps(schema.get('normalization'))}")
    for name, value in outputs.items():
        flat = " ".join(f"{v:.6g}" for v in value.reshape(-1).tolist())
        print(f"{name} {list(value.shape)}: {flat}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
