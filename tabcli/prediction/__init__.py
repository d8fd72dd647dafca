"""Predictions of a trained run: tables of predictions from raw outputs (``tables``) and whole files predicted in chunks (``files``)."""
