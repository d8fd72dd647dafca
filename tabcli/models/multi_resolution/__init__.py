"""The ``multi_resolution`` family: numerical and categorical tokens through MultiResolutionTabularAttention."""
