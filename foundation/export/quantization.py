"""Compressed copies of an exported graph (int8 weights, fp16) and what they cost in accuracy.

- ``int8``: ONNX Runtime's pre-processing (``quant_pre_process``), then
  :func:`onnxruntime.quantization.quantize_dynamic` (int8 weights, activations quantized on the
  fly; MatMul-heavy graphs gain most on CPU, tiny ones may lose to the quantization overhead).
- ``fp16``: float16 weights and activations with float32 inputs and outputs
  (``onnxruntime.transformers.float16``, shipped with the ``onnxruntime`` wheel). Meant for GPUs:
  most CPU kernels have no float16 version, so on CPU it is usually slower.

:func:`compression_cost` measures ΔAUC of a binary jet classifier output between the float32
and the compressed graph on labelled batches, and the speed of both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from foundation.data.batch import JetBatch
from foundation.export.errors import ExportError
from foundation.export.files import atomic_file
from foundation.export.inputs import to_numpy
from foundation.export.metadata import PREFIX, metadata_of, read_metadata, set_metadata
from foundation.export.options import QUANTIZATION_MODES
from foundation.export.quiet import quiet_quantizer
from foundation.export.session import create_session, run_session
from foundation.extras import requires_extra
from foundation.hub.hashing import sha256_file

MODES = QUANTIZATION_MODES


class QuantizationError(ExportError):
    """A compressed graph could not be written or does not load in ONNX Runtime."""


def quantize(
    onnx_path: str | PathLike[str],
    out: str | PathLike[str],
    mode: str = "int8",
    *,
    overwrite: bool = False,
) -> Path:
    """Write a compressed copy of an exported graph, atomically, with its metadata.

    The copy keeps every ``foundation.*`` metadata entry and adds ``foundation.quantization``
    (mode, the sha256 of the float32 file, and whether int8 pre-processing could be applied).

    Args:
        onnx_path: the float32 ``.onnx`` file.
        out: the file to write.
        mode: ``"int8"`` (dynamic quantization) or ``"fp16"``.
        overwrite: replace an existing ``out``.

    Returns:
        ``out``.

    Raises:
        ValueError: unknown mode, or ``out`` is ``onnx_path``.
        QuantizationError: the conversion failed or ONNX Runtime cannot load the result.
    """
    source, target = Path(onnx_path), Path(out)
    if mode not in MODES:
        raise ValueError(f"quantization mode must be one of {MODES}, found {mode!r}")
    if source.resolve() == target.resolve():
        raise ValueError(f"{target}: the compressed copy needs another file name than its source")
    props = metadata_of(onnx.load(str(source)))
    with atomic_file(target, overwrite=overwrite, what="an ONNX file") as temporary:
        try:
            preprocessed = _convert(source, temporary, mode)
            model = onnx.load(str(temporary))
        except Exception as error:
            raise QuantizationError(f"{source}: {mode} conversion failed: {error}") from error
        props[PREFIX + "quantization"] = json.dumps(
            {
                "mode": mode,
                "float32_sha256": sha256_file(source),
                "preprocessed": preprocessed,
            }
        )
        set_metadata(model, props)
        onnx.save(model, str(temporary))
        try:
            create_session(temporary)
        except Exception as error:
            raise QuantizationError(
                f"{source}: ONNX Runtime cannot load the {mode} graph: {error}"
            ) from error
    return target


def _convert(source: Path, target: Path, mode: str) -> bool:
    """Write the compressed graph; True when ONNX Runtime's int8 pre-processing was applied."""
    if mode == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with quiet_quantizer():
            prepared = _preprocessed(source, target)
        try:
            with quiet_quantizer():
                quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
        finally:
            if prepared != source:
                prepared.unlink(missing_ok=True)
        return prepared != source
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))
    return False


def _preprocessed(source: Path, target: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (shape inference, fused ops) before int8.

    Returns a temporary file next to ``target``, or ``source`` when pre-processing fails (the
    quantization then runs on the graph as exported).
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_name(target.name + ".pre.onnx")
    try:
        quant_pre_process(str(source), str(prepared))
    except Exception:
        prepared.unlink(missing_ok=True)
        return source
    return prepared


@dataclass
class CompressionCost:
    """Accuracy and speed of a compressed graph against its float32 original.

    Attributes:
        mode: the compression (from the compressed file's metadata, "" if unknown).
        output: the scored output.
        jets: labelled jets used.
        auc_reference: AUC of the float32 graph.
        auc_compressed: AUC of the compressed graph.
        delta_auc: ``auc_compressed - auc_reference``.
        max_abs_diff: largest score difference over all jets.
        reference_jets_per_s: float32 throughput on the given batches.
        compressed_jets_per_s: compressed throughput on the same batches.
        threads: ONNX Runtime intra-op threads of both sessions.
        reference_bytes: float32 file size.
        compressed_bytes: compressed file size.
    """

    mode: str
    output: str
    jets: int
    auc_reference: float
    auc_compressed: float
    delta_auc: float
    max_abs_diff: float
    reference_jets_per_s: float
    compressed_jets_per_s: float
    threads: int | None
    reference_bytes: int
    compressed_bytes: int

    @property
    def speedup(self) -> float:
        return self.compressed_jets_per_s / self.reference_jets_per_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup}


def binary_output(metadata: Mapping[str, Any]) -> tuple[str, str]:
    """``(output, target)``: the first rank-1 jet-level output of a two-label head.

    Raises:
        ValueError: the graph has no such output.
    """
    heads = metadata.get("heads") or {}
    for output in metadata.get("outputs") or []:
        head = heads.get(output["head"], {})
        if (
            output["level"] == "jet"
            and len(output.get("shape") or []) == 1
            and len(head.get("label_names", [])) == 2
        ):
            return output["name"], head["target"]
    raise ValueError(
        "the graph has no binary jet classification output (a [B] output of a head with two "
        "labels); pass output= and target="
    )


def binary_labels(batch: JetBatch, target: str) -> np.ndarray:
    """Class labels ``[B]`` (0, 1; -1 = unlabelled) from ``batch.targets[target]``.

    Raises:
        KeyError: the batch has no such target.
        ValueError: it is not ``[B]`` indices or ``[B, 2]`` one-hot rows.
    """
    if target not in batch.targets:
        raise KeyError(
            f"labelled batches need target {target!r}; found {sorted(batch.targets) or 'none'}"
        )
    values = batch.targets[target]
    if values.dim() == 2 and values.shape[1] == 2:
        values = torch.where(values.sum(dim=1) > 0, values.argmax(dim=1), -1)
    if values.dim() != 1:
        raise ValueError(
            f"target {target!r}: expected class indices [B] or one-hot [B, 2], found shape "
            f"{tuple(values.shape)}"
        )
    return to_numpy(values).astype(np.int64)


def _feeds(batch: JetBatch) -> dict[str, np.ndarray]:
    return {
        "particles": to_numpy(batch.particles.float()),
        "vectors": to_numpy(batch.vectors.float()),
        "mask": to_numpy(batch.mask),
        "jet": to_numpy(batch.jet.float()),
    }


def _scores(
    session: ort.InferenceSession, feeds: Sequence[dict[str, np.ndarray]], output: str
) -> tuple[np.ndarray, float]:
    """Concatenated scores of ``output`` and the seconds the batches took (after a warm-up)."""
    run_session(session, feeds[0])
    start = time.perf_counter()
    scores = [run_session(session, feed)[output] for feed in feeds]
    return np.concatenate(scores).astype(np.float64), time.perf_counter() - start


def compression_cost(
    reference: str | PathLike[str],
    compressed: str | PathLike[str],
    batches: Sequence[JetBatch],
    *,
    output: str | None = None,
    target: str | None = None,
    threads: int | None = None,
) -> CompressionCost:
    """ΔAUC and speed of ``compressed`` against ``reference`` on labelled batches.

    Both must be full graphs (backbone + heads) taking ``particles``/``vectors``/``mask``
    (``jet``). The output defaults to the first binary jet classification output and the labels
    to its head's target (both from the metadata).

    Args:
        reference: the float32 ``.onnx`` file.
        compressed: its compressed copy (see :func:`quantize`).
        batches: labelled jets (both classes present).
        output: the scored output (``[B]``, higher = ``label_names[1]``).
        target: the key of the labels in ``batch.targets``.
        threads: ONNX Runtime intra-op threads.

    Raises:
        ValueError: no batches, only one class, or no binary output.
    """
    if not batches:
        raise ValueError("compression_cost needs at least one labelled batch")
    metadata = read_metadata(reference)
    if output is None or target is None:
        default_output, default_target = binary_output(metadata)
        output, target = output or default_output, target or default_target
    labels = np.concatenate([binary_labels(batch, target) for batch in batches])
    keep = labels >= 0
    if len(set(labels[keep].tolist())) != 2:
        raise ValueError(f"target {target!r}: the batches need jets of both classes")
    feeds = [_feeds(batch) for batch in batches]
    results = {}
    for name, path in (("reference", reference), ("compressed", compressed)):
        scores, seconds = _scores(create_session(path, threads=threads), feeds, output)
        if scores.ndim != 1:
            raise ValueError(f"output {output!r}: expected scores [B], found shape {scores.shape}")
        results[name] = (scores, seconds)
    (ref_scores, ref_seconds), (new_scores, new_seconds) = results.values()
    with requires_extra("train"):
        from sklearn.metrics import roc_auc_score

    auc_reference = float(roc_auc_score(labels[keep], ref_scores[keep]))
    auc_compressed = float(roc_auc_score(labels[keep], new_scores[keep]))
    quantization = read_metadata(compressed).get("quantization") or {}
    return CompressionCost(
        mode=str(quantization.get("mode", "")),
        output=output,
        jets=int(keep.sum()),
        auc_reference=auc_reference,
        auc_compressed=auc_compressed,
        delta_auc=auc_compressed - auc_reference,
        max_abs_diff=float(np.abs(new_scores - ref_scores).max()),
        reference_jets_per_s=len(labels) / ref_seconds,
        compressed_jets_per_s=len(labels) / new_seconds,
        threads=threads,
        reference_bytes=Path(reference).stat().st_size,
        compressed_bytes=Path(compressed).stat().st_size,
    )


def random_feeds(
    inputs: Sequence[Mapping[str, Any]],
    batch_size: int = 64,
    num_particles: int = 64,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Random feeds for a graph from its ``foundation.inputs`` metadata.

    Jet inputs (``particles``, ``vectors``, ``mask``, ``jet``) come from
    :func:`~foundation.export.inputs.random_jets`; embedding inputs are standard normal, zero on
    padding.
    """
    from foundation.export.inputs import random_jets

    def width(name: str) -> int:
        spec = next((i for i in inputs if i["name"] == name), None)
        return int(spec["shape"][-1]) if spec is not None else 0

    batch = random_jets(
        batch_size,
        num_particles,
        width("particles"),
        width("jet"),
        mean_particles=num_particles / 2,
        seed=seed,
    )
    feeds = _feeds(batch)
    generator = np.random.default_rng(seed)
    keep = feeds["mask"][..., None]
    dim = width("particle_embeddings") or width("jet_embedding")
    embeddings = generator.standard_normal((batch_size, num_particles, dim)).astype(np.float32)
    feeds["particle_embeddings"] = np.where(keep, embeddings, 0.0).astype(np.float32)
    feeds["jet_embedding"] = generator.standard_normal((batch_size, dim)).astype(np.float32)
    return {spec["name"]: feeds[spec["name"]] for spec in inputs}


def output_differences(
    reference: str | PathLike[str], compressed: str | PathLike[str], seed: int = 0
) -> dict[str, float]:
    """Largest absolute difference of every output between two graphs on random jets.

    For a quick look without labels (the ΔAUC of :func:`compression_cost` needs labels).
    """
    feeds = random_feeds(read_metadata(reference)["inputs"], seed=seed)
    expected = run_session(create_session(reference), feeds)
    found = run_session(create_session(compressed), feeds)
    return {
        name: float(np.abs(found[name].astype(np.float64) - value.astype(np.float64)).max())
        if value.size
        else 0.0
        for name, value in expected.items()
    }


def compressed_path(path: str | PathLike[str], mode: str) -> Path:
    """``model.onnx`` -> ``model.int8.onnx`` (or ``.fp16``)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{mode}{path.suffix or '.onnx'}")
