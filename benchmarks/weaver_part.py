"""The reference model: ParT from the ``weaver-core`` package, adapted to take a JetBatch.

Benchmark-only: nothing here is registered in the library, and no weaver code is copied. The
adapters only transpose the project's channels-last padded tensors into weaver's channels-first
ones, ``x [B, F, N]``, ``v [B, 4, N]`` (px, py, pz, E), ``mask [B, 1, N]``, so that both models
read exactly the same jets.

Install with ``pip install weaver-core`` (the ``weaver`` extra); only
``weaver.nn.model.ParticleTransformer`` is imported, which needs nothing beyond torch.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from foundation.data.batch import JetBatch

JETCLASS_FULL: dict[str, Any] = {
    "input_dim": 17,
    "num_classes": 10,
    "pair_input_dim": 4,
    "embed_dims": [128, 512, 128],
    "pair_embed_dims": [64, 64, 64],
    "num_heads": 8,
    "num_layers": 8,
    "num_cls_layers": 2,
    "fc_params": [],
    "use_amp": False,
}
"""ParT's configuration for the JetClass "full" inputs (weaver-core's
``example_ParticleTransformer`` with ``pair_input_dim=4``): 2.1 M parameters."""


def weaver_available() -> bool:
    """True when ``weaver.nn.model.ParticleTransformer`` can be imported."""
    return importlib.util.find_spec("weaver") is not None


def _particle_transformer_class() -> type[nn.Module]:
    try:
        from weaver.nn.model.ParticleTransformer import ParticleTransformer
    except ImportError as error:
        raise ImportError(
            "the reference ParT comes from the weaver-core package, which is not installed: "
            "pip install 'foundation-jets[weaver]' (or pip install weaver-core)"
        ) from error
    return ParticleTransformer


def part_config(num_classes: int = 2, **overrides: Any) -> dict[str, Any]:
    """The JetClass-full configuration with ``num_classes`` outputs and any overrides."""
    return {**JETCLASS_FULL, "num_classes": num_classes, **overrides}


def _build(config: dict[str, Any], for_inference: bool) -> nn.Module:
    import logging

    cls = _particle_transformer_class()
    logger = logging.getLogger("weaver")  # weaver logs its whole config at INFO on every build
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return cls(**config, for_inference=for_inference)
    finally:
        logger.setLevel(level)


class WeaverParT(nn.Module):
    """weaver-core's ParticleTransformer taking a :class:`JetBatch` and returning logits.

    Weaver trims padding (``SequenceTrimmer``) once it has seen 5 batches; the adapter starts it
    past that warm-up, so that every timed call runs in the steady state.

    Args:
        num_classes: logits per jet (ParT's ``fc_params=[]``: one linear layer on the class
            token).
        **overrides: constructor arguments replacing :data:`JETCLASS_FULL`'s.

    Shapes:
        - batch.particles: ``[B, N, F]``; batch.vectors: ``[B, N, 4]``; batch.mask: ``[B, N]``
        - output: ``[B, num_classes]`` logits
    """

    def __init__(self, num_classes: int = 2, **overrides: Any) -> None:
        super().__init__()
        self.config = part_config(num_classes, **overrides)
        self.part = _build(self.config, for_inference=False)
        trimmer = getattr(self.part, "trimmer", None)
        if trimmer is not None and hasattr(trimmer, "_counter"):
            trimmer._counter.fill_(trimmer.warmup_steps)

    def forward(self, batch: JetBatch) -> torch.Tensor:
        return self.part(
            batch.particles.transpose(1, 2),
            v=batch.vectors.transpose(1, 2),
            mask=batch.mask.unsqueeze(1).to(batch.particles.dtype),
        )


class WeaverParTGraph(nn.Module):
    """The export graph: ParT built ``for_inference`` (dense pairs, no trimming, softmax out).

    Takes the project's ONNX inputs (``particles [B, N, F]``, ``vectors [B, N, 4]``, ``mask
    [B, N]`` bool) and returns ``probabilities [B, num_classes]``.

    Padded 4-vectors are replaced by ``(1, 0, 0, 1)`` before they reach ParT: the TorchScript
    exporter writes ``atan2`` as ``Atan(y / x)``, which is NaN for the all-zero padding, and the
    NaN pair features of padded pairs would reach every attention row through the additive
    mask (``NaN + -inf``). Padded pairs are masked out of attention, so the outputs are those of
    the eager model.
    """

    placeholder: torch.Tensor

    def __init__(self, trained: WeaverParT) -> None:
        super().__init__()
        self.part = _build(trained.config, for_inference=True)
        self.part.load_state_dict(trained.part.state_dict())
        self.part.eval()
        self.register_buffer("placeholder", torch.tensor([1.0, 0.0, 0.0, 1.0]), persistent=False)

    def forward(
        self, particles: torch.Tensor, vectors: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        vectors = torch.where(mask.unsqueeze(-1), vectors, self.placeholder)
        return self.part(
            particles.transpose(1, 2),
            v=vectors.transpose(1, 2),
            mask=mask.unsqueeze(1).to(particles.dtype),
        )


def export_weaver_onnx(model: WeaverParT, path: Path, opset: int = 17) -> Path:
    """Export ParT with the TorchScript-based exporter (``dynamo=False``), dynamic B and N.

    Raises:
        RuntimeError: the exporter failed (the message names the exporter and the error).
    """
    graph = WeaverParTGraph(model)
    width = model.config["input_dim"]
    example = (
        torch.randn(2, 16, width),
        torch.rand(2, 16, 4) + torch.tensor([0.0, 0.0, 0.0, 2.0]),
        torch.arange(16).expand(2, 16) < torch.tensor([[16], [9]]),
    )
    names = ["particles", "vectors", "mask"]
    axes = {name: {0: "batch", 1: "particles"} for name in names}
    axes["probabilities"] = {0: "batch"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                example,
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=names,
                output_names=["probabilities"],
                dynamic_axes=axes,
                do_constant_folding=True,
            )
    except Exception as error:
        raise RuntimeError(
            f"weaver ParT: torch.onnx.export(dynamo=False, opset {opset}) failed: "
            f"{type(error).__name__}: {error}"
        ) from error
    return path
