"""Convert a weaver-core state-dict file into a checkpoint folder (the ``hub convert`` command).

The architecture picks its converter from :data:`CONVERTERS`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from foundation.convert.weaver_common import describe_source, read_state_dict, write_converted
from foundation.convert.weaver_config import read_weaver_data_config
from foundation.convert.weaver_part import convert_weaver_part
from foundation.convert.weaver_particlenet import convert_weaver_particlenet
from foundation.model import Model

CONVERTERS: dict[str, Callable[..., Model]] = {
    "particlenet": convert_weaver_particlenet,
    "part": convert_weaver_part,
}
"""Architecture name -> its converter ``convert_weaver_<arch>(state_dict, data_config, ...)``."""


def get_converter(arch: str) -> Callable[..., Model]:
    """The ``convert_weaver_<arch>`` function of an architecture.

    Raises:
        KeyError: an unknown architecture (the message lists the known ones).
    """
    if arch not in CONVERTERS:
        close = difflib.get_close_matches(arch, list(CONVERTERS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(
            f"unknown weaver architecture {arch!r}: expected one of {list(CONVERTERS)}{hint}"
        )
    return CONVERTERS[arch]


def convert_weaver_file(
    arch: str,
    state_dict: str | PathLike[str],
    data_config: str | PathLike[str],
    out: str | PathLike[str],
    *,
    name: str | None = None,
    options: Mapping[str, Any] | None = None,
    card: Mapping[str, Any] | None = None,
    repository: str | None = None,
    commit: str | None = None,
    license_file: str | PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Read a weaver state dict and its data config, convert, and write a checkpoint folder.

    Args:
        arch: ``particlenet`` or ``part`` (:data:`CONVERTERS`).
        state_dict: the ``.pt`` file (read with ``weights_only=True``).
        data_config: the weaver data config (YAML) the network was trained with.
        out: destination folder.
        name: checkpoint name recorded in config.json.
        options: keyword arguments of the converter (e.g. ``{"use_fusion": True}``).
        card: model-card sections.
        repository, commit: where the weights were published (recorded in the provenance).
        license_file: the license to copy next to the weights.
        overwrite: replace an existing folder.

    Returns:
        The folder.
    """
    converter = get_converter(arch)
    config = read_weaver_data_config(data_config)
    source = describe_source(state_dict, repository, commit, license_file)
    model = converter(read_state_dict(state_dict), config, source=state_dict, **dict(options or {}))
    return write_converted(
        model,
        out,
        data_config=config,
        source=source,
        name=name,
        card=card,
        overwrite=overwrite,
    )
