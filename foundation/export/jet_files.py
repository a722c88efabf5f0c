"""Jet text files for ``deploy/python/score_jet.py`` (and ``deploy/cpp``), made by the library.

An exported graph takes particle features computed and normalized as its checkpoint's feature
schema says; a consumer without this library cannot compute them. :func:`write_jet_files`
does it with :func:`foundation.inference.to_batch` (the same features and normalization that
evaluation and :func:`~foundation.inference.predict` use) and writes one file per jet::

    model = load_pretrained("runs/top")
    write_jet_files("data/top/*.root", model, "model.jets", count=5, onnx="model.onnx")
    # python deploy/python/score_jet.py model.onnx model.jets/jet_000.txt

File format (``score_jet.write_jet``'s; ``#`` starts a comment)::

    N F J                      # real particles, particle features, jet-level inputs
    f_1 ... f_F px py pz E     # N lines: normalized features in the schema's order, 4-vector
    j_1 ... j_J                # one line of normalized jet inputs, only when J > 0

Values are float32 written with 9 significant digits, so they read back bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from foundation.data.readers import expand_paths, read_file
from foundation.data.records import JetRecords
from foundation.errors import DataError, OutputExistsError
from foundation.export.metadata import read_metadata
from foundation.inference import to_batch
from foundation.model import Model

JetSource = JetRecords | str | PathLike[str] | Sequence[str | PathLike[str]]
"""Records, or files / glob patterns of any registered format."""

FILE_PATTERN = "jet_{index:03d}.txt"
HEADER = "# foundation jet: N F J, then N lines of features + (px py pz E), then jet inputs"


def jet_files_folder(onnx_path: str | PathLike[str]) -> Path:
    """Where the jets of an export go: ``model.onnx`` -> ``model.jets/``."""
    return Path(onnx_path).with_suffix(".jets")


def first_jets(jets: JetSource, count: int) -> list[tuple[JetRecords, str]]:
    """The first ``count`` jets, one record each, with a line saying where each came from.

    Files are read one at a time and reading stops once ``count`` jets are found.

    Raises:
        ValueError: ``count`` < 1.
        DataError: no file matches, a file is unreadable, or the files hold no jet.
    """
    if count < 1:
        raise ValueError(f"example jets: count must be >= 1, found {count}")
    if isinstance(jets, JetRecords):
        names, sources = "records", iter([(jets, "records")])
    else:
        files = expand_paths(jets)
        names = ", ".join(str(file) for file in files)
        sources = ((read_file(file), str(file)) for file in files)
    found: list[tuple[JetRecords, str]] = []
    for records, source in sources:
        for index in range(min(len(records), count - len(found))):
            jet = records.select([index])
            label = records.label_names[int(jet.labels[0])] if records.label_names else "?"
            particles = int(jet.counts[0])
            found.append((jet, f"# source: {source}, jet {index}, {label}, {particles} particles"))
        if len(found) >= count:
            break
    if not found:
        raise DataError(names, "jets", "at least one jet", "none")
    return found


def check_onnx_schema(model: Model, onnx_path: str | PathLike[str]) -> None:
    """Refuse a graph whose feature schema differs from ``model``'s (its jets would not fit).

    Raises:
        ValueError: the model has no schema, or the graph's metadata holds another one.
        DataError: the file is not a readable export.
    """
    if model.feature_schema is None:
        raise ValueError("the model has no feature schema: load it with load_pretrained")
    expected = json.loads(json.dumps(model.feature_schema.to_dict()))
    found = read_metadata(onnx_path).get("feature_schema")
    if found != expected:
        raise DataError(
            onnx_path,
            "foundation.feature_schema",
            "the feature schema of the model the jets are computed for",
            "another schema (features or normalization differ)",
            hint="write the jets with the checkpoint this graph was exported from",
        )


def write_jet_files(
    jets: JetSource,
    model: Model,
    folder: str | PathLike[str],
    *,
    count: int = 5,
    onnx: str | PathLike[str] | None = None,
    max_particles: int | None = None,
    allow_missing_fields: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Write the first ``count`` jets as normalized score_jet files ``folder/jet_000.txt``, ...

    The folder is written whole or not at all (a temporary sibling, renamed into place).

    Args:
        jets: records, or files / glob patterns (JetClass ROOT, TopLandscape HDF5, QG npz).
        model: the loaded checkpoint (its feature schema says what to compute and how to
            normalize).
        folder: the output folder (see :func:`jet_files_folder`).
        count: how many jets (fewer when the files hold fewer).
        onnx: the exported graph the files are for: its metadata's feature schema must equal
            the model's.
        max_particles: particle slots per jet (default: the checkpoint's
            ``feature_schema.max_particles``, 128 when it does not record it); more particles
            are dropped, softest first (as in training and evaluation).
        allow_missing_fields: see :func:`foundation.inference.to_batch`.
        overwrite: replace a folder written before (it may hold only ``jet_*.txt`` files).

    Returns:
        The files written, in jet order.

    Raises:
        OutputExistsError: ``folder`` exists and ``overwrite`` is False.
        FileExistsError: ``folder`` holds other files than jet files (never deleted).
        ValueError: bad ``count``, no feature schema, or a schema that differs from ``onnx``'s.
        DataError: unreadable jets, or jets lacking fields the features need.
    """
    check_target(folder, overwrite)
    if onnx is not None:
        check_onnx_schema(model, onnx)
    return write_selected_jets(
        first_jets(jets, count),
        model,
        folder,
        max_particles=max_particles,
        allow_missing_fields=allow_missing_fields,
        overwrite=overwrite,
    )


def write_selected_jets(
    selected: Sequence[tuple[JetRecords, str]],
    model: Model,
    folder: str | PathLike[str],
    *,
    max_particles: int | None = None,
    allow_missing_fields: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """:func:`write_jet_files` on jets already read by :func:`first_jets` (one record and one
    comment line each); arguments and errors as there."""
    target = Path(folder)
    check_target(target, overwrite)
    records = JetRecords.concat([jet for jet, _ in selected])
    batch = to_batch(
        records, model, max_particles=max_particles, allow_missing_fields=allow_missing_fields
    )
    particles, mask = batch.particles.numpy(), batch.mask.numpy()
    vectors, jet_inputs = batch.vectors.numpy(), batch.jet.numpy()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        names = []
        for index, (_, comment) in enumerate(selected):
            real = mask[index]
            name = FILE_PATTERN.format(index=index)
            text = jet_text(
                particles[index][real], vectors[index][real], jet_inputs[index], [comment]
            )
            (temporary / name).write_text(text, encoding="utf-8")
            names.append(name)
        os.chmod(temporary, 0o755)
        check_target(target, overwrite)
        if target.exists():
            shutil.rmtree(target)
        os.replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return [target / name for name in names]


def jet_text(
    particles: np.ndarray, vectors: np.ndarray, jet: np.ndarray, comments: Sequence[str] = ()
) -> str:
    """One jet in score_jet's text format (see the module docstring), ``comments`` (lines
    starting with ``#``) after the header.

    Shapes:
        - particles: ``[N, F]``; vectors: ``[N, 4]``; jet: ``[J]``
    """
    particles = np.asarray(particles, dtype=np.float32)
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(particles), 4)
    jet = np.asarray(jet, dtype=np.float32).reshape(-1)
    lines = [HEADER, *comments, f"{len(particles)} {particles.shape[1]} {len(jet)}"]
    lines += [
        " ".join(f"{value:.9g}" for value in (*row, *vector))
        for row, vector in zip(particles, vectors, strict=True)
    ]
    if len(jet):
        lines.append(" ".join(f"{value:.9g}" for value in jet))
    return "\n".join(lines) + "\n"


def check_target(folder: str | PathLike[str], overwrite: bool) -> None:
    """Refuse an existing folder unless ``overwrite``; never delete one that holds other files.

    Raises:
        OutputExistsError: ``folder`` exists and ``overwrite`` is False.
        FileExistsError: it is a file, or holds other files than ``jet_*.txt``.
    """
    target = Path(folder)
    if not target.exists():
        return
    if not overwrite:
        raise OutputExistsError(target, "jet files")
    if not target.is_dir():
        raise FileExistsError(f"{target} is a file, not a folder of jet files; remove it")
    others = sorted(p.name for p in target.iterdir() if not p.match("jet_*.txt"))
    if others:
        raise FileExistsError(
            f"{target} holds other files than jet_*.txt ({', '.join(others[:5])}); it is not "
            "replaced: choose another folder"
        )
