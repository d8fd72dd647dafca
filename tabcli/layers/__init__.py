"""tabcli's Keras layers, all registered for `.keras` serialisation under the package "tabcli".

Importing this module imports Keras (and so TensorFlow).
"""

from tabcli.layers.context import ContextRows
from tabcli.layers.embeddings import CategoricalEmbedding, NumericalEmbedding, PeriodicEmbedding
from tabcli.layers.interpretable_attention import InterpretableMultiHeadAttention
from tabcli.layers.multi_resolution_attention import MultiResolutionTabularAttention
from tabcli.layers.pooling import AttentionPooling
from tabcli.layers.retrieval import RetrievalAttention
from tabcli.layers.sparse_weighting import SparseAttentionWeighting, sparsemax
from tabcli.layers.tabular_attention import TabularAttention

__all__ = [
    "AttentionPooling",
    "CategoricalEmbedding",
    "ContextRows",
    "InterpretableMultiHeadAttention",
    "MultiResolutionTabularAttention",
    "NumericalEmbedding",
    "PeriodicEmbedding",
    "RetrievalAttention",
    "SparseAttentionWeighting",
    "TabularAttention",
    "sparsemax",
]
