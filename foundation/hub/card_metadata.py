"""The Hugging Face Hub metadata of a model card, built with ``huggingface_hub.ModelCardData``.

License id, ``library_name``, ``tags``, ``datasets``, ``base_model`` (with
``base_model_relation``) of fine-tunes and deltas, and the ``model-index`` of the card's results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from foundation.hub.download import HUB_PREFIX, is_repo_id

LIBRARY_NAME = "foundation"
BASE_TAGS: tuple[str, ...] = ("particle-physics", "jets")
HUB_LICENSES: frozenset[str] = frozenset(
    {
        "apache-2.0",
        "mit",
        "bsd-2-clause",
        "bsd-3-clause",
        "cc0-1.0",
        "cc-by-4.0",
        "cc-by-sa-4.0",
        "cc-by-nc-4.0",
        "cc-by-nc-sa-4.0",
        "gpl-3.0",
        "lgpl-3.0",
        "agpl-3.0",
        "mpl-2.0",
        "unlicense",
    }
)
"""License identifiers of the Hub (lower-case SPDX) recognised in a card's ``license`` text;
any other license is written as ``license: other`` with its ``license_name``."""

_SPLITS = {"train", "val", "validation", "test"}


def card_metadata(config: Mapping[str, Any], card: Mapping[str, Any]) -> ModelCardData:
    """The Hub metadata of a card: license, library, tags, datasets, base model, model-index.

    ``base_model`` is written only when it is a Hub repo id (``org/name``): the base of a delta
    (``config.json``'s ``base``), or the card's ``base_model`` for a full fine-tune. A local
    folder or shipped name is named in the card's text instead (the Hub refuses other values).

    Raises:
        ValueError: ``datasets``, ``tags`` or ``results`` have the wrong type.
    """
    license_id, license_name = hub_license(card.get("license"))
    datasets = _strings(card.get("datasets"), "datasets")
    tags = [*BASE_TAGS, config["backbone"]["name"]]
    tags += [tag for tag in _strings(card.get("tags"), "tags") if tag not in tags]
    base = config.get("base") or {}
    reference = base.get("name_or_path") or card.get("base_model")
    base_model = None
    if reference and is_repo_id(str(reference)):
        base_model = str(reference).removeprefix(HUB_PREFIX)
    extra: dict[str, Any] = {}
    if base_model:
        extra["base_model_relation"] = "adapter" if config.get("adapters") else "finetune"
    if license_name:
        extra["license_name"] = license_name
    name = str(card.get("title") or config.get("name") or config["backbone"]["name"])
    results = eval_results(config, card, datasets)
    return ModelCardData(
        license=license_id,
        library_name=LIBRARY_NAME,
        tags=tags,
        datasets=datasets or None,
        base_model=base_model,
        model_name=name if results else None,
        eval_results=results or None,
        **extra,
    )


def hub_license(text: Any) -> tuple[str | None, str | None]:
    """``(license id, license_name)`` of a card's license text.

    ``"Apache-2.0 (weights and code)"`` gives ``("apache-2.0", None)``; a license the Hub does
    not list gives ``("other", "<slug of its first line>")``; no text gives ``(None, None)``.
    """
    if text is None or not str(text).strip():
        return None, None
    first_line = str(text).strip().splitlines()[0].strip()
    token = first_line.split()[0].strip(".,;:()").lower()
    if token in HUB_LICENSES:
        return token, None
    slug = re.sub(r"[^a-z0-9.]+", "-", first_line.lower()).strip("-")
    return "other", slug or "unspecified"


def eval_results(
    config: Mapping[str, Any], card: Mapping[str, Any], datasets: Sequence[str]
) -> list[EvalResult]:
    """The ``model-index`` results of a card.

    From ``card["results"]`` when given, else from the numeric entries of a ``metrics`` dict
    (keys ``"split/metric"`` give the split). Text metrics give no results.

    Raises:
        ValueError: a result misses ``task``, ``dataset``, ``metric`` or a numeric ``value``.
    """
    results = card.get("results")
    if results is not None:
        if not isinstance(results, Sequence) or isinstance(results, str):
            raise ValueError(f"model card: 'results' must be a list, found {results!r}")
        return [_result(entry, index) for index, entry in enumerate(results)]
    metrics = card.get("metrics")
    if not isinstance(metrics, Mapping):
        return []
    heads = config.get("heads") or {}
    task = next((head["type"].replace("_", "-") for head in heads.values()), "jet-tagging")
    dataset = datasets[0] if datasets else "unspecified"
    found = []
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        parts = str(key).split("/")
        split = parts[0] if len(parts) > 1 and parts[0] in _SPLITS else None
        metric = "/".join(parts[1:] if split else parts)
        found.append(
            EvalResult(
                task_type=task,
                dataset_type=dataset,
                dataset_name=dataset,
                dataset_split=split,
                metric_type=metric,
                metric_value=float(value),
            )
        )
    return found


def _result(entry: Any, index: int) -> EvalResult:
    """One ``results`` entry of a card as an ``EvalResult``."""
    where = f"model card: results[{index}]"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a mapping, found {entry!r}")
    missing = [key for key in ("task", "dataset", "metric", "value") if entry.get(key) is None]
    if missing:
        raise ValueError(f"{where}: missing {missing} (found keys {sorted(entry)})")
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: 'value' must be a number, found {value!r}")
    return EvalResult(
        task_type=str(entry["task"]),
        task_name=entry.get("task_name"),
        dataset_type=str(entry["dataset"]),
        dataset_name=str(entry.get("dataset_name") or entry["dataset"]),
        dataset_split=entry.get("split"),
        metric_type=str(entry["metric"]),
        metric_name=entry.get("name"),
        metric_value=float(value),
    )


def _strings(value: Any, key: str) -> list[str]:
    """A card entry that must be a list of strings (a single string is one entry)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(item, str) and item for item in value):
        return list(value)
    raise ValueError(f"model card: {key!r} must be a list of strings, found {value!r}")
