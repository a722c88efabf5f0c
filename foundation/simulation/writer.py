"""Writing simulated jets to JetClass-format ROOT shards, atomically, with provenance."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from foundation.data.schema import METADATA_KEY, TREE_NAME
from foundation.errors import DataError
from foundation.locking import unique_temporary

_INTEGER_JET_BRANCHES = {"event_id": np.int64, "jet_truth_parton_id": np.int32}


def write_shard(
    path: Path,
    jets: dict[str, np.ndarray],
    particles: dict[str, list[np.ndarray]],
    metadata: dict[str, Any],
) -> None:
    """Write one shard: tree ``tree`` with ``part_*`` jagged branches and ``jet_*``/``label_*``.

    The file is written to a temporary ``.NAME.tmp-*`` of this writer and renamed, so a reader
    never sees a partial shard and two writers never share a temporary file.

    Args:
        path: destination ``.root`` file.
        jets: per-jet arrays ``[n_jets]`` keyed by branch name.
        particles: per-particle field name (without ``part_``) -> one array per jet.
        metadata: JSON-serialisable provenance stored as the TObjString ``foundation_metadata``.
    """
    counts = np.array([len(values) for values in particles["px"]], dtype=np.int64)
    part = ak.zip(
        {
            name: ak.unflatten(np.concatenate(values) if len(values) else np.zeros(0), counts)
            for name, values in particles.items()
        }
    )
    data: dict[str, Any] = {"part": part}
    for name, values in jets.items():
        dtype = _INTEGER_JET_BRANCHES.get(name)
        if dtype is None:
            dtype = np.bool_ if name.startswith("label_") else np.float32
        data[name] = np.asarray(values, dtype=dtype)
    with unique_temporary(path) as temporary:
        with uproot.recreate(temporary) as file:
            tree = file.mktree(
                TREE_NAME,
                {
                    name: value.type if isinstance(value, ak.Array) else value.dtype
                    for name, value in data.items()
                },
            )
            tree.extend(data)
            file[METADATA_KEY] = json.dumps(metadata, sort_keys=True)
        os.replace(temporary, path)


def read_metadata(path: Path) -> dict[str, Any]:
    """The provenance stored in a simulated shard (an error names the file when it is absent)."""
    try:
        with uproot.open(path) as file:
            if METADATA_KEY not in file:
                raise DataError(path, METADATA_KEY, "a TObjString of JSON provenance", "nothing")
            return json.loads(str(file[METADATA_KEY]))
    except DataError:
        raise
    except Exception as error:  # uproot raises many types on damaged files
        raise DataError(
            path, "<file>", "a readable ROOT file", f"{type(error).__name__}: {error}"
        ) from None
