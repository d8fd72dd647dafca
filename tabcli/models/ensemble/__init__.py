"""The ``ensemble`` family: several branches combined by SparseAttentionWeighting."""
