"""`tabcli tune`: hyper-parameter search with Optuna; every trial is an ordinary run directory."""
