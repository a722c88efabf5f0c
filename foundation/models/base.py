"""The backbone contract: a JetBatch goes in, :class:`Features` come out.

A backbone's ``config`` is captured from its constructor (:class:`ConstructorConfig`), never
copied by hand, so that ``create_backbone(name, **backbone.config)`` rebuilds the same model.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from foundation.data.batch import JetBatch
from foundation.io import jsonable


@dataclass
class Features:
    """What every backbone returns and every head consumes.

    Shapes:
        - particles: ``[B, N, D]`` per-particle embeddings (padding rows are zero).
        - jet: ``[B, D]`` jet embedding, independent of particle order.
        - mask: ``[B, N]`` bool, True for a real particle (the input mask, unchanged).
    """

    particles: torch.Tensor
    jet: torch.Tensor
    mask: torch.Tensor


class ConstructorConfig:
    """A ``config`` captured from the constructor: mix in before ``nn.Module``.

    The constructor of the class being built is wrapped so that, before its body runs,
    ``self.config`` (JSON values) holds its arguments as bound, with the defaults applied, in
    the order of the signature (tuples become lists):

    - keyword-only arguments (after ``*``) are options, recorded only when they differ from
      their default, so that adding an option leaves the config of every earlier checkpoint
      unchanged;
    - ``**kwargs`` are recorded flat, in the order given;
    - the names in ``config_exclude`` (arguments that are not JSON, such as a module factory)
      are left out.

    A constructor that resolves an argument (a ``None`` default computed from the others)
    records the resolved value with :meth:`record_resolved`, so that a checkpoint keeps it even
    if the rule changes.

    Raises:
        ValueError: at construction, a recorded argument is not a JSON value.
    """

    config: dict[str, Any]
    config_exclude: ClassVar[tuple[str, ...]] = ()
    """Constructor arguments that are not part of ``config``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _capturing_config(cls.__init__)  # type: ignore[method-assign]

    def record_resolved(self, **values: Any) -> None:
        """Replace the recorded value of arguments resolved by the constructor (e.g. a ``None``
        default computed from the others). An argument the class being built does not take (a
        subclass's constructor fixed it) stays out of ``config``."""
        for name, value in values.items():
            if name in self.config:
                self.config[name] = jsonable(value, allow_nan=True)


class Backbone(ConstructorConfig, nn.Module):
    """Base class of every registered backbone.

    Subclasses set ``num_features`` (the embedding width ``D``); ``config`` is captured from
    their constructor (:class:`ConstructorConfig`), so that a checkpoint rebuilds the backbone
    from ``config.json`` alone with ``create_backbone(name, **config)``.
    """

    num_features: int

    def forward(self, batch: JetBatch) -> Features:  # pragma: no cover - interface
        raise NotImplementedError

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters grouped from input to output, for layer-wise learning-rate decay.

        The default puts all parameters in one group; deep backbones override it.
        """
        return [list(self.parameters())]


def _capturing_config(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` preceded by ``self.config = constructor_config(...)`` when it builds the class
    being constructed (not when a subclass's constructor calls it through ``super()``)."""
    signature = inspect.signature(init)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()):
        raise TypeError(
            f"{init.__qualname__}: a backbone constructor cannot take *args (config.json "
            "records keyword arguments)"
        )

    @functools.wraps(init)
    def capturing_init(self: ConstructorConfig, *args: Any, **kwargs: Any) -> None:
        if type(self).__init__ is capturing_init:
            bound = signature.bind(self, *args, **kwargs)
            self.config = constructor_config(type(self), signature, bound)
        init(self, *args, **kwargs)

    return capturing_init


def constructor_config(
    cls: type[ConstructorConfig], signature: inspect.Signature, bound: inspect.BoundArguments
) -> dict[str, Any]:
    """The ``config`` of ``cls`` built with ``bound`` (the rules: :class:`ConstructorConfig`).

    Raises:
        ValueError: a recorded argument is not a JSON value (the message names it).
    """
    bound.apply_defaults()
    config: dict[str, Any] = {}
    for name, parameter in list(signature.parameters.items())[1:]:  # after self
        if name in cls.config_exclude:
            continue
        value = bound.arguments[name]
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            items = {key: jsonable(item, allow_nan=True) for key, item in value.items()}
        else:
            items = {name: jsonable(value, allow_nan=True)}
        for key, item in items.items():
            try:
                json.dumps(item)
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"{cls.__name__}: the constructor arguments must be JSON values (they are "
                    f"saved in config.json), found {key}={item!r}: {error}"
                ) from None
        default = jsonable(parameter.default, allow_nan=True)
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY or items[name] != default:
            config.update(items)
    return config
