"""ONNX Runtime sessions with a stated thread count, and running them on named numpy feeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import numpy as np
import onnxruntime as ort

from foundation.errors import DataError

_ERRORS_ONLY = 3
_DTYPES = {"tensor(float)": np.float32, "tensor(bool)": np.bool_, "tensor(int64)": np.int64}


def create_session(
    model: str | PathLike[str] | bytes,
    *,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    profile_prefix: str | PathLike[str] | None = None,
) -> ort.InferenceSession:
    """An inference session with all graph optimisations.

    A file is read and its weights checked against the hash written at export first
    (:func:`foundation.export.metadata.load_model`).

    Args:
        model: an ``.onnx`` path or the serialized model.
        threads: intra-op threads (None: ONNX Runtime's default, one per core); inter-op
            parallelism is off (one thread), as for a single-graph server.
        providers: execution providers (default: CPU only).
        profile_prefix: switch ONNX Runtime's profiler on, writing its JSON trace to files
            starting with this path (``session.end_profiling()`` returns the file).

    Raises:
        FileNotFoundError: no such file.
        DataError: the file is not a readable ONNX model, its weights do not match the hash
            written at export, or ONNX Runtime refuses it.
    """
    from foundation.export.metadata import load_model

    name = "model" if isinstance(model, bytes) else str(model)
    load_model(model)  # readable, and the weights are the exported ones
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = _ERRORS_ONLY
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(
            source, sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
        )
    except Exception as error:  # a boundary: ONNX Runtime's errors carry its own traceback
        found = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        raise DataError(name, "<graph>", "a graph ONNX Runtime can load", found) from None


def session_input_names(session: ort.InferenceSession) -> list[str]:
    """Names of the inputs the graph really has (ONNX drops inputs that no output reads)."""
    return [node.name for node in session.get_inputs()]


def run_session(
    session: ort.InferenceSession, feeds: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Run the session on the feeds it takes (extra feeds are ignored); outputs by name.

    Raises:
        KeyError: an input is missing.
        ValueError: inputs of inconsistent shapes or wrong dtypes (:func:`check_feeds`).
    """
    wanted = session_input_names(session)
    missing = [name for name in wanted if name not in feeds]
    if missing:
        raise KeyError(f"the ONNX graph needs input(s) {missing}; given: {sorted(feeds)}")
    check_feeds(session, feeds)
    names = [node.name for node in session.get_outputs()]
    values = session.run(names, {name: feeds[name] for name in wanted})
    return dict(zip(names, values, strict=True))


def check_feeds(session: ort.InferenceSession, feeds: Mapping[str, np.ndarray]) -> None:
    """Check the feeds against the graph's declared inputs before ONNX Runtime runs them.

    Every input must have the declared rank and dtype, fixed sizes must match, and an axis
    named alike in several inputs (``batch``, ``num_particles``) must have one size in all
    of them: ``particles [1, 20, 17]`` with ``mask [1, 5]`` is refused, where the graph would
    silently score a mismatched jet.

    Raises:
        ValueError: the first inconsistent input, naming it, the axis and both sizes.
    """
    sizes: dict[str, tuple[int, str]] = {}
    for node in session.get_inputs():
        if node.name not in feeds:
            continue
        value = np.asarray(feeds[node.name])
        dtype = _DTYPES.get(node.type)
        if dtype is not None and value.dtype != dtype:
            raise ValueError(
                f"input {node.name!r}: expected dtype {np.dtype(dtype).name}, found {value.dtype}"
            )
        if value.ndim != len(node.shape):
            raise ValueError(
                f"input {node.name!r}: expected {len(node.shape)} axes {list(node.shape)}, "
                f"found shape {list(value.shape)}"
            )
        for axis, (declared, size) in enumerate(zip(node.shape, value.shape, strict=True)):
            if isinstance(declared, int) and declared != size:
                raise ValueError(
                    f"input {node.name!r}: axis {axis} must have size {declared}, found {size} "
                    f"(shape {list(value.shape)})"
                )
            if isinstance(declared, str) and declared:
                known = sizes.setdefault(declared, (size, node.name))
                if known[0] != size:
                    raise ValueError(
                        f"input {node.name!r}: axis {axis} ({declared}) has size {size}, but "
                        f"input {known[1]!r} has {known[0]}: inputs must describe the same jets"
                    )


def check_finite_outputs(outputs: Mapping[str, np.ndarray], source: str) -> None:
    """Refuse NaN or infinite outputs (a corrupted model or inputs out of range).

    Raises:
        DataError: names the first output holding NaN/inf and how many values.
    """
    for name, value in outputs.items():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            bad = int((~np.isfinite(value)).sum())
            raise DataError(
                source,
                name,
                "finite outputs",
                f"{bad} NaN/inf of {value.size}",
                hint="the model file may be corrupt (export it again) or the inputs out of range",
            )
