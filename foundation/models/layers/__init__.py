"""Building blocks shared by the backbones: masking, normalisation, geometry, kNN, attention."""

from foundation.models.layers.attention import MultiheadAttention
from foundation.models.layers.geometry import jet_relative_eta_phi
from foundation.models.layers.knn import gather_neighbours, knn_graph_dense, pairwise_sq_distances
from foundation.models.layers.masking import (
    attention_allowed,
    attention_bias,
    is_exporting,
    masked_mean,
    masked_softmax,
    masked_sum,
    pad_particles,
    trim_padding,
    zero_padding,
)
from foundation.models.layers.norm import MaskedBatchNorm
from foundation.models.layers.packing import Packing
from foundation.models.layers.pair_embedding import PairEmbedding
from foundation.models.layers.pooling import AttentionPooling, Pooling
from foundation.models.layers.rotary import EtaPhiRotary, apply_rotary

__all__ = [
    "AttentionPooling",
    "EtaPhiRotary",
    "MaskedBatchNorm",
    "MultiheadAttention",
    "Packing",
    "PairEmbedding",
    "Pooling",
    "apply_rotary",
    "attention_allowed",
    "attention_bias",
    "gather_neighbours",
    "is_exporting",
    "jet_relative_eta_phi",
    "knn_graph_dense",
    "masked_mean",
    "masked_softmax",
    "masked_sum",
    "pad_particles",
    "pairwise_sq_distances",
    "trim_padding",
    "zero_padding",
]
