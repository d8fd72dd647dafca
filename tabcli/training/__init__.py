"""Compiling and fitting Keras models: optimiser, losses, callbacks, progress display."""
