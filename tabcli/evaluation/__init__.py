"""Metrics and plots of a trained run on labelled data."""
