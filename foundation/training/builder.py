"""Build the :class:`~foundation.model.Model` of a recipe: a new or pretrained backbone, its heads.

Head arguments the data determines (each head's :meth:`~heads.base.Head.defaults_from_data`, e.g.
the class names of a ``jet_classification`` head from ``data.classes`` or the files' labels) are
filled in when the recipe leaves them out. In ``linear`` fine-tuning every head is a linear probe.
"""

from __future__ import annotations

from typing import Any

from foundation.data.features import check_feature_fields
from foundation.errors import DataError
from foundation.hub.delta import DeltaBase, delta_base
from foundation.hub.schema import FeatureSchema
from foundation.loading import load_pretrained
from foundation.model import Model
from foundation.training.datamodule import DataSummary
from foundation.training.modes import get_mode
from foundation.training.recipe import Recipe
from foundation.training.typed import RecipeError


def load_base(recipe: Recipe) -> Model | None:
    """The pretrained model named by ``model.pretrained`` (backbone only), or None.

    This is where a run resolves and hashes its base, once: ``base.source["record"]`` is the
    resolved checkpoint with its verified sha256 (see :func:`base_record`).

    Raises:
        CheckpointError / KeyError: the checkpoint cannot be found or loaded.
    """
    if recipe.model.pretrained is None:
        return None
    return load_pretrained(recipe.model.pretrained, revision=recipe.model.revision, heads=None)


def base_record(base: Model) -> DeltaBase:
    """What the run's delta checkpoints record about ``base`` (loaded by :func:`load_base`),
    from what was read when it was loaded: no file is resolved, hashed or read again.

    Call it before training changes anything (the backbone's tensors are fingerprinted).
    """
    source = base.source or {}
    return delta_base(source["record"], source["config"], base.state_dict())


def check_inputs(
    base: Model, summary: DataSummary, source: str, allow_missing: bool = False
) -> None:
    """The data's features are those the pretrained backbone was trained on, in order, and the
    data has the fields they are computed from.

    Args:
        base: the pretrained model.
        summary: the prepared data.
        source: ``model.pretrained``, for messages.
        allow_missing: ``data.allow_missing_fields``: features whose fields the data lacks
            (0 for every particle) give a :class:`~foundation.data.features.MissingFieldsWarning`
            instead of an error.

    Raises:
        RecipeError: the features differ (the message lists how), or the data lacks the fields
            of some (the message names them and the feature sets, i.e. backbones, that fit).
    """
    problems = base.check_feature_schema(list(summary.feature_names))
    jet_inputs = int(base.backbone.config.get("in_jet_features", 0) or 0)
    schema = base.feature_schema
    if jet_inputs and schema is not None and schema.jet_features != summary.jet_feature_names:
        problems.append(
            f"jet_features: expected {list(schema.jet_features)}, found "
            f"{list(summary.jet_feature_names)}"
        )
    if problems:
        raise RecipeError(
            f"model.pretrained {source!r}: the data's inputs differ from the checkpoint's: "
            + "; ".join(problems)
            + " (set data.features to the checkpoint's feature names)"
        )
    fields = summary.cache.particle_fields
    if fields:  # caches written before fields were recorded have none: nothing to check
        try:
            check_feature_fields(
                summary.feature_names,
                fields,
                f"data.cache {summary.cache.folder}",
                allow_missing=allow_missing,
            )
        except DataError as error:
            raise RecipeError(
                f"model.pretrained {source!r}: {error}; to fine-tune anyway, set "
                "data.allow_missing_fields: true"
            ) from None


def _backbone(recipe: Recipe, summary: DataSummary, base: Model | None) -> Model:
    if base is None:
        kwargs = {
            "in_features": len(summary.feature_names),
            "in_jet_features": len(summary.jet_feature_names) if recipe.model.jet_inputs else 0,
            **recipe.model.backbone_kwargs,
        }
        return Model.create(recipe.model.backbone or "", kwargs)
    check_inputs(base, summary, recipe.model.pretrained or "", recipe.data.allow_missing_fields)
    if get_mode(recipe.finetune.mode).fresh_weights:
        return Model.create(base.backbone_name or "", dict(base.backbone.config))
    return base


def head_arguments(
    recipe: Recipe, head_type: str, kwargs: dict[str, Any], summary: DataSummary
) -> dict[str, Any]:
    """Head constructor arguments with the data-determined defaults filled in."""
    from heads.registry import get_head_class

    arguments = dict(kwargs)
    for key, value in get_head_class(head_type).defaults_from_data(summary).items():
        arguments.setdefault(key, value)
    if get_mode(recipe.finetune.mode).linear_heads and "hidden" in _accepted(head_type):
        arguments["hidden"] = []
    return arguments


def _accepted(head_type: str) -> set[str]:
    import inspect

    from heads.registry import get_head_class

    return set(inspect.signature(get_head_class(head_type)).parameters)


def build_model(recipe: Recipe, summary: DataSummary, base: Model | None = None) -> Model:
    """The model of ``recipe`` on the prepared data, with its feature schema set.

    Args:
        recipe: the recipe.
        summary: the prepared data (:meth:`JetDataModule.prepare`).
        base: the pretrained model from :func:`load_base` (None for a new backbone).

    Raises:
        RecipeError: inputs that differ from the pretrained checkpoint's.
        KeyError / ValueError: unknown backbone or head, or bad head arguments.
    """
    model = _backbone(recipe, summary, base)
    _use_graph(model, recipe.model.graph)
    for name, head in recipe.model.heads.items():
        arguments = head_arguments(recipe, head.type, head.kwargs, summary)
        model.add_head(name, head.type, weight=head.weight, **arguments)
    model.feature_schema = FeatureSchema(
        summary.feature_names,
        summary.jet_feature_names,
        summary.normalization,
        max_particles=recipe.data.max_particles,
    )
    return model


def _use_graph(model: Model, graph: str) -> None:
    """Switch the backbone to ``model.graph`` (a runtime setting, never saved in its config).

    Raises:
        RecipeError: ``packed`` for a backbone without a packed path.
    """
    if graph == "dense":
        return
    use_graph = getattr(model.backbone, "use_graph", None)
    if use_graph is None:
        raise RecipeError(
            f"model.graph: {graph!r} needs a backbone with a packed path (the particlenet "
            f"family), found {model.backbone_name!r}; remove model.graph or set it to 'dense'"
        )
    use_graph(graph)


def head_targets(model: Model) -> list[str]:
    """The ``batch.targets`` keys the data must provide for the model's heads
    (:meth:`~heads.base.Head.data_targets`)."""
    names: list[str] = []
    for head in model.heads.values():
        names += head.data_targets()
    return names
