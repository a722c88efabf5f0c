"""Built-in backbones: importing this module registers every architecture and its variants.

Imported lazily by :mod:`foundation.models.registry`; nothing else happens at import.

- ``part-tiny``, ``part-s``, ``part``: :class:`~foundation.models.part.ParticleTransformer`
  (Qu, Li, Qian 2022); ``part`` is the paper's 2.1 M-parameter model.
- ``jetformer-tiny``, ``jetformer-s``, ``jetformer-base``:
  :class:`~foundation.models.jetformer.JetFormer` (fused attention, rotary (Δη, Δφ) geometry,
  no per-head pair tensors).
- ``particlenet-tiny``, ``particlenet-s`` (ParticleNet-Lite), ``particlenet``:
  :class:`~foundation.models.particlenet.ParticleNet` (Qu, Gouskos 2020).
- ``pfn-tiny``, ``pfn``: :class:`~foundation.models.pfn.ParticleFlowNetwork`
  (Komiske, Metodiev, Thaler 2019).
- ``pyg-edgeconv-tiny``: :class:`~foundation.models.pyg.PyGBackbone` around a dynamic-graph
  EdgeConv network of ``torch_geometric.nn`` layers (the example of plugging in a PyG module).
"""

from foundation.models import jetformer, part, particlenet, pfn, pyg

__all__ = ["jetformer", "part", "particlenet", "pfn", "pyg"]
