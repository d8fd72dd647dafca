"""The ``tabular_attention`` family: feature tokens -> TabularAttention -> retrieval of the k nearest training rows
(default) or context rows -> head."""
