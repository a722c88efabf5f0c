"""The ``README.md`` model card of a checkpoint, written from a dict and the config only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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

NOT_PROVIDED = "_Not provided._"


def render_card(config: Mapping[str, Any], card: Mapping[str, Any] | None = None) -> str:
    """Render the model card.

    Every section comes from ``card`` (keys of :data:`CARD_SECTIONS`, plus ``title`` and
    ``summary``) or from ``config.json``; a section without information says so: no number is
    ever made up. ``metrics`` may be a ``{name: value}`` dict (a table) or text.

    Raises:
        KeyError: ``card`` has keys that are not sections (a typo would silently drop text).
    """
    card = dict(card or {})
    known = {key for key, _ in CARD_SECTIONS} | {"title", "summary"}
    unknown = sorted(set(card) - known)
    if unknown:
        raise KeyError(f"model card: unknown keys {unknown}; expected some of {sorted(known)}")
    backbone = config["backbone"]
    title = card.get("title") or config.get("name") or backbone["name"]
    lines = [_front_matter(card), f"# {title}", ""]
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
        "`SHA256SUMS` (sha256 of every file). Load with "
        '`foundation.hub.load_pretrained("<this folder or repo>")`.',
        "",
    ]
    return "\n".join(lines)


def _front_matter(card: Mapping[str, Any]) -> str:
    """Hugging Face Hub YAML metadata (license only when given)."""
    lines = ["---", "library_name: foundation", "tags:", "- particle-physics", "- jets"]
    if card.get("license"):
        first_line = str(card["license"]).strip().splitlines()[0]
        lines.append(f"license: {json.dumps(first_line)}")
    lines.append("---")
    return "\n".join(lines) + "\n"


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
