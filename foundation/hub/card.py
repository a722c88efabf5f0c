"""The ``README.md`` model card of a checkpoint, written from a dict and the config only.

The card is a Hugging Face Hub model card: its YAML metadata is built with
``huggingface_hub.ModelCardData`` (license id, ``library_name``, ``tags``, ``datasets``,
``base_model`` of fine-tunes and deltas, ``model-index`` with the card's results) and the whole
text is parsed back with ``huggingface_hub.ModelCard`` before it is returned. The card is not
part of ``SHA256SUMS``: editing it (on the Hub or locally) never breaks loading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from huggingface_hub import ModelCard

from foundation.hub.card_metadata import card_metadata

CARD_SECTIONS: tuple[tuple[str, str], ...] = (
    ("data", "Training data"),
    ("recipe", "Training recipe"),
    ("metrics", "Metrics"),
    ("intended_use", "Intended use"),
    ("limitations", "Limitations"),
    ("license", "License"),
    ("citation", "Citation"),
)
"""Keys accepted in the ``card`` dict, with their section titles, in card order."""

METADATA_KEYS: tuple[str, ...] = ("title", "summary", "datasets", "tags", "base_model", "results")
"""Other keys of the ``card`` dict: ``title`` and ``summary`` (text), ``datasets`` and ``tags``
(lists of strings), ``base_model`` (the Hub repo a full fine-tune started from; deltas name
theirs in ``config.json``), ``results`` (list of ``{task, dataset, dataset_name, split, metric,
name, value}`` mappings for the ``model-index``; default: the numbers of a ``metrics`` dict)."""

CARD_KEYS: frozenset[str] = frozenset({key for key, _ in CARD_SECTIONS} | set(METADATA_KEYS))
"""Every key accepted in the ``card`` dict."""

NOT_PROVIDED = "_Not provided._"


def render_card(config: Mapping[str, Any], card: Mapping[str, Any] | None = None) -> str:
    """Render the model card.

    Every section comes from ``card`` (keys of :data:`CARD_SECTIONS` and
    :data:`METADATA_KEYS`) or from ``config.json``; a section without information says so: no
    number is ever made up. ``metrics`` may be a ``{name: value}`` dict (a table) or text.

    Returns:
        The card: Hub YAML metadata (see :func:`~foundation.hub.card_metadata.card_metadata`)
        and the Markdown body.

    Raises:
        KeyError: ``card`` has keys that are not sections (a typo would silently drop text).
        ValueError: a metadata entry has the wrong type (``datasets`` not a list of strings...).
    """
    card = dict(card or {})
    unknown = sorted(set(card) - CARD_KEYS)
    if unknown:
        raise KeyError(f"model card: unknown keys {unknown}; expected some of {sorted(CARD_KEYS)}")
    backbone = config["backbone"]
    title = card.get("title") or config.get("name") or backbone["name"]
    metadata = card_metadata(config, card)
    lines = [f"# {title}", ""]
    if card.get("summary"):
        lines += [str(card["summary"]).strip(), ""]
    kwargs = _json(backbone["kwargs"])
    lines += ["## Model", "", f"- Backbone: `{backbone['name']}` with `{kwargs}`"]
    for name, head in config.get("heads", {}).items():
        labels = ", ".join(head.get("label_names") or []) or "-"
        lines.append(
            f"- Head `{name}`: `{head['type']}` ({head['level']} level), loss weight "
            f"{head['loss_weight']}, target `{head['target']}`, labels: {labels}"
        )
    if config.get("adapters"):
        lines.append(f"- Adapters: `{_json(config['adapters'])}`")
    if config.get("base"):
        base = config["base"]
        lines.append(
            f"- Fine-tuned delta on `{base['name_or_path']}` (revision "
            f"{base.get('revision') or 'default'}, model.safetensors sha256 `{base['sha256']}`)"
        )
    schema = config["feature_schema"]
    particle_names = ", ".join(f"`{n}`" for n in schema["particle_features"])
    lines += ["", "## Inputs", "", f"- Particle features, in order: {particle_names}"]
    if schema.get("jet_features"):
        jet_names = ", ".join(f"`{n}`" for n in schema["jet_features"])
        lines.append(f"- Jet features, in order: {jet_names}")
    normalization = "stored in `config.json` (`feature_schema.normalization`)"
    lines.append(f"- Normalization: {normalization if schema.get('normalization') else 'none'}")
    if config.get("provenance"):
        lines += ["", "## Provenance", "", "```json", _json(config["provenance"], indent=2), "```"]
    for key, title_text in CARD_SECTIONS:
        lines += ["", f"## {title_text}", "", _section(card.get(key))]
    lines += [
        "",
        "## Files",
        "",
        "`config.json` (architecture, heads, feature schema), `model.safetensors` (weights), "
        "`SHA256SUMS` (sha256 of `config.json` and `model.safetensors`, checked on every load; "
        "this card is not hashed, so editing it never breaks loading). Load with "
        '`foundation.load_pretrained("<this folder or repo>")`.',
        "",
    ]
    text = f"---\n{metadata.to_yaml()}\n---\n\n" + "\n".join(lines)
    return ModelCard(text).content  # parsed back: the metadata block is valid Hub YAML


def _section(value: Any) -> str:
    """Text of one section: a table for a dict of metrics, a list for a list, else the text."""
    if value is None or value == "" or value == {} or value == []:
        return NOT_PROVIDED
    if isinstance(value, Mapping):
        rows = ["| name | value |", "| --- | --- |"]
        rows += [f"| {name} | {_cell(item)} |" for name, item in value.items()]
        return "\n".join(rows)
    if isinstance(value, (list, tuple)):
        return "\n".join(f"- {item}" for item in value)
    return str(value).strip()


def _cell(value: Any) -> str:
    return _json(value) if isinstance(value, (Mapping, list, tuple)) else str(value)


def _json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, sort_keys=True)
