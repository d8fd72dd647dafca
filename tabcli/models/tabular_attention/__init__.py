"""The ``tabular_attention`` family: feature tokens -> TabularAttention (with context rows) -> head."""
