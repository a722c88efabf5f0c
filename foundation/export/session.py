"""ONNX Runtime sessions with a stated thread count, and running them on named numpy feeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import numpy as np
import onnxruntime as ort

_ERRORS_ONLY = 3


def create_session(
    model: str | PathLike[str] | bytes,
    *,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    profile_prefix: str | PathLike[str] | None = None,
) -> ort.InferenceSession:
    """An inference session with all graph optimisations.

    Args:
        model: an ``.onnx`` path or the serialized model.
        threads: intra-op threads (None: ONNX Runtime's default, one per core); inter-op
            parallelism is off (one thread), as for a single-graph server.
        providers: execution providers (default: CPU only).
        profile_prefix: switch ONNX Runtime's profiler on, writing its JSON trace to files
            starting with this path (``session.end_profiling()`` returns the file).
    """
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
    return ort.InferenceSession(
        source, sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
    )


def session_input_names(session: ort.InferenceSession) -> list[str]:
    """Names of the inputs the graph really has (ONNX drops inputs that no output reads)."""
    return [node.name for node in session.get_inputs()]


def run_session(
    session: ort.InferenceSession, feeds: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Run the session on the feeds it takes (extra feeds are ignored); outputs by name."""
    wanted = session_input_names(session)
    missing = [name for name in wanted if name not in feeds]
    if missing:
        raise KeyError(f"the ONNX graph needs input(s) {missing}; given: {sorted(feeds)}")
    names = [node.name for node in session.get_outputs()]
    values = session.run(names, {name: feeds[name] for name in wanted})
    return dict(zip(names, values, strict=True))
