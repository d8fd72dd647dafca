"""The ``interpretable`` family: InterpretableMultiHeadAttention blocks, attention pooling with a learned query."""
