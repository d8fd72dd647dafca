"""tabcli's Keras layers, all registered for `.keras` serialisation under the package "tabcli".

Importing this module imports Keras (and so TensorFlow).
"""

from tabcli.layers.context import ContextRows
from tabcli.layers.embeddings import CategoricalEmbedding, NumericalEmbedding
from tabcli.layers.tabular_attention import TabularAttention

__all__ = ["CategoricalEmbedding", "ContextRows", "NumericalEmbedding", "TabularAttention"]
