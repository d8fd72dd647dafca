"""The ``gbdt`` family: scikit-learn HistGradientBoosting on the same preprocessing, the non-neural baseline."""
