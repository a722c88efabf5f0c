"""Score one jet with an exported foundation model, using only numpy and onnxruntime.

A documented consumer of ``foundation export`` graphs, without PyTorch or this library:

    foundation export RUN --onnx model.onnx --example-jets data/top/*.root --example-count 5
    python deploy/python/score_jet.py model.onnx model.jets/jet_000.txt [--json]

It reads the graph's metadata (feature schema, inputs, label names), reads one jet from a text
file, builds the padded inputs (batch of one, every slot real), runs ONNX Runtime and prints each
output. ``deploy/cpp/score_jet.cpp`` does the same in C++ on the same jet files.

Jet file (text, ``#`` starts a comment)::

    N F J                      # real particles, particle features, jet-level inputs
    f_1 ... f_F px py pz E     # N lines: features in the schema's order, then the 4-vector
    j_1 ... j_J                # one line, only when J > 0

Features must already be computed and normalised as the metadata's ``feature_schema`` says
(the consumer prints it); 4-vectors are in GeV. ``mask`` is a bool tensor (True = real). A jet
may have no particles (``N = 0``). The project writes such files from any jet file it reads
(JetClass ROOT, TopLandscape HDF5, QG npz): ``foundation export ... --example-jets FILES``
above (``model.jets/jet_000.txt`` ...), or ``foundation.export.jet_files.write_jet_files``.

Un-normalized inputs are refused: a feature that the normalization clips (to ``[-clip, clip]``,
or its own ``[clip_min, clip_max]``) can never lie outside that range after normalization, so
such a value means raw features were written (exit 1, one line naming the file, the feature,
the range and the value). Raw values that happen to lie inside the range cannot be told apart;
write the files with the project to be sure.

Why the graph does not normalize itself: its inputs are the computed features (log pT, Δη,
impact parameters ...), not raw particles, so a consumer must compute them outside the graph
anyway, and normalization is the last step of that computation (done in one place by the
project, for training, evaluation and these files alike). The C++ consumer, CMSSW-style
deployments and the export's parity gate all feed normalized features; a graph that normalized
again would silently double-normalize for all of them.

Before scoring, the graph's weights are checked against the sha256 written at export
(``foundation.weights_sha256``: each initializer's serialized bytes, length-prefixed, read from
the file with a few lines of protobuf wire-format parsing); a corrupted or truncated file and
NaN/inf outputs are errors (exit 1, one line), never a score.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

WEIGHTS_KEY = "foundation.weights_sha256"
_MODEL_GRAPH, _MODEL_METADATA, _GRAPH_INITIALIZER = 7, 14, 5


def write_jet(
    path: str | Path, particles: np.ndarray, vectors: np.ndarray, jet: np.ndarray | None = None
) -> Path:
    """Write one jet in the text format above.

    Shapes:
        - particles: ``[N, F]``; vectors: ``[N, 4]``; jet: ``[J]`` (or None)
    """
    vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, 4)
    particles = np.asarray(particles, dtype=np.float32)
    particles = particles.reshape(len(vectors), particles.shape[-1] if particles.ndim else 0)
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
    try:
        count, width, jet_width = (int(value) for value in rows[0][1])
    except ValueError:
        raise ValueError(f"{path}: the first line must be 'N F J' (three integers)") from None
    if min(count, width, jet_width) < 0:
        raise ValueError(f"{path}: N, F and J must be >= 0, found {count} {width} {jet_width}")
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
        table.append([_number(path, number, value) for value in values])
    data = np.asarray(table, dtype=np.float32).reshape(count, width + 4)
    jet = np.zeros(0, np.float32)
    if jet_width:
        number, values = rows[-1]
        if len(values) != jet_width:
            raise ValueError(f"{path}: line {number}: expected {jet_width} jet inputs")
        jet = np.asarray([_number(path, number, value) for value in values], dtype=np.float32)
    return data[:, :width], data[:, width:], jet


def _number(path: str | Path, line: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: line {line}: expected a number, found {text!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{path}: line {line}: expected a finite number, found {text!r}")
    return value


MAKE_INPUTS = (
    "write normalized jets with 'foundation export CHECKPOINT --onnx model.onnx --example-jets "
    "FILES' (model.jets/jet_000.txt ...) or foundation.export.jet_files.write_jet_files"
)


def clip_ranges(
    schema: object,
) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
    """The ``[low, high]`` each clipped feature lies in after normalization, by feature name.

    Reads the metadata's ``feature_schema.normalization``: ``{"particles": N, "jet": N}`` or one
    ``N`` (particle features), ``N`` being ``Normalizer.to_dict()`` (``names``, ``clip`` or
    per-feature ``clip_min`` / ``clip_max``, None an open side); per-feature ``{mean, std}``
    entries do not clip. Features without a bound are left out.

    Returns:
        ``(particle ranges, jet ranges)``.
    """
    data = schema.get("normalization") if isinstance(schema, dict) else None
    if not isinstance(data, dict) or not data:
        return {}, {}
    if {"names", "center", "scale"} <= set(data):
        return _ranges(data), {}
    return _ranges(data.get("particles", data.get("particle"))), _ranges(data.get("jet"))


def _ranges(entry: object) -> dict[str, tuple[float, float]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("names"), list):
        return {}
    names = entry["names"]
    low, high = entry.get("clip_min"), entry.get("clip_max")
    if isinstance(low, list) and isinstance(high, list):
        pairs = [
            (-np.inf if a is None else float(a), np.inf if b is None else float(b))
            for a, b in zip(low, high, strict=False)
        ]
    elif isinstance(entry.get("clip"), (int, float)):
        pairs = [(-float(entry["clip"]), float(entry["clip"]))] * len(names)
    else:
        return {}
    return {
        str(name): pair
        for name, pair in zip(names, pairs, strict=False)
        if np.isfinite(pair[0]) or np.isfinite(pair[1])
    }


def check_inputs(path: str | Path, particles: np.ndarray, jet: np.ndarray, schema: object) -> None:
    """Refuse a jet whose widths differ from the schema or whose values the normalization
    cannot produce (a clipped feature outside its clip range).

    Raises:
        ValueError: one line naming the file, the feature, the expectation and the value.

    Shapes:
        - particles: ``[N, F]``; jet: ``[J]``
    """
    if not isinstance(schema, dict):
        return
    for label, names, found in (
        ("particle features", schema.get("particle_features") or [], particles.shape[1]),
        ("jet inputs", schema.get("jet_features") or [], len(jet)),
    ):
        if names and found != len(names):
            raise ValueError(
                f"{path}: {found} {label}, the model takes {len(names)}: {', '.join(names)}"
            )
    particle_ranges, jet_ranges = clip_ranges(schema)
    columns = [
        ("particle feature", name, particles[:, i], particle_ranges.get(name))
        for i, name in enumerate(schema.get("particle_features") or [])
    ] + [
        ("jet input", name, jet[i : i + 1], jet_ranges.get(name))
        for i, name in enumerate(schema.get("jet_features") or [])
    ]
    for what, name, values, bounds in columns:
        row = None if bounds is None else _first_outside(values, *bounds)
        if row is not None:
            where = f" of particle {row + 1}" if what.startswith("particle") else ""
            raise ValueError(
                f"{path}: {what} {name!r}{where} is {values[row]:.6g}, outside [{bounds[0]:g}, "
                f"{bounds[1]:g}], the range its normalization clips to: the file holds "
                f"un-normalized features; {MAKE_INPUTS}"
            )


def _first_outside(values: np.ndarray, low: float, high: float) -> int | None:
    """The first index of ``values`` outside ``[low, high]`` (with float32 rounding slack)."""
    slack = 1e-6 * max([1.0] + [abs(bound) for bound in (low, high) if np.isfinite(bound)])
    outside = np.flatnonzero((values < low - slack) | (values > high + slack))
    return int(outside[0]) if len(outside) else None


# ------------------------------------------------------------------------- weights check
def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, position


def _fields(data: memoryview) -> Iterator[tuple[int, memoryview | int]]:
    """``(field number, value)`` of a protobuf message: bytes for length-delimited fields."""
    position = 0
    while position < len(data):
        tag, position = _varint(data, position)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, position = 0, position + size
        elif wire == 2:
            length, position = _varint(data, position)
            value = data[position : position + length]
            position += length
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if position > len(data):
            raise ValueError("truncated message")
        yield number, value


def weights_and_metadata(data: bytes) -> tuple[str, dict[str, str]]:
    """The sha256 of a serialized ONNX model's initializers and its ``metadata_props``.

    Raises:
        ValueError: the bytes are not a well-formed protobuf message (truncated or corrupt).
    """
    digest = hashlib.sha256()
    metadata: dict[str, str] = {}
    for number, value in _fields(memoryview(data)):
        if number == _MODEL_GRAPH and isinstance(value, memoryview):
            for inner, tensor in _fields(value):
                if inner == _GRAPH_INITIALIZER and isinstance(tensor, memoryview):
                    digest.update(len(tensor).to_bytes(8, "little"))
                    digest.update(tensor)
        elif number == _MODEL_METADATA and isinstance(value, memoryview):
            entry = {n: bytes(v).decode() for n, v in _fields(value) if isinstance(v, memoryview)}
            metadata[entry.get(1, "")] = entry.get(2, "")
    return digest.hexdigest(), metadata


def open_model(path: str | Path) -> ort.InferenceSession:
    """An ONNX Runtime session of ``path`` after checking its weights hash.

    Raises:
        ValueError: the file is not a readable ONNX model, its weights differ from the hash
            written at export, or ONNX Runtime refuses it.
    """
    data = Path(path).read_bytes()
    try:
        found, props = weights_and_metadata(data)
    except ValueError as error:
        raise ValueError(
            f"{path}: not a readable ONNX model (truncated or corrupt: {error})"
        ) from None
    stored = props.get(WEIGHTS_KEY)
    if stored and stored != found:
        raise ValueError(
            f"{path}: the weights do not match the sha256 written at export ({stored[:16]}..., "
            f"found {found[:16]}...): the file is corrupted or was edited; export it again"
        )
    try:
        return ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime's own errors: one line
        text = " ".join(str(error).split())[:300]
        raise ValueError(f"{path}: ONNX Runtime cannot load it ({text})") from None


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
        "particles": particles.reshape(1, count, particles.shape[-1]).astype(np.float32),
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
    outputs = dict(zip(names, values, strict=True))
    for name, value in outputs.items():
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            raise ValueError(
                f"output {name!r} is NaN/inf: the model file may be corrupt (export it again)"
            )
    return outputs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="an .onnx file written by 'foundation export'")
    parser.add_argument("jet", type=Path, help="a jet file (see the module docstring)")
    parser.add_argument("--json", action="store_true", help="print the outputs as JSON")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    session = open_model(args.model)
    info = metadata(session)
    particles, vectors, jet = read_jet(args.jet)
    schema = info.get("feature_schema") or {}
    check_inputs(args.jet, particles, jet, schema)
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
