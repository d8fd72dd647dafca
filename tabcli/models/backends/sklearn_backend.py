"""The scikit-learn backend: estimators fitted on the preprocessed columns and saved with joblib."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.markup import escape

from tabcli.models.backends.base import Backend, Fitted

__all__ = ["SklearnBackend"]


class SklearnBackend(Backend):
    """Families whose builder module defines ``fit(config, spec, train, valid, seed) ->
    (estimator, history)``, ``predict_raw(estimator, spec, inputs)`` and
    ``parameter_count(estimator)`` (``gbdt``)."""

    model_file = "model.joblib"
    iteration_unit = "boosting iterations"

    def fit(self, run, config, data, spec, console, say, callbacks=()) -> Fitted:
        """Fit on the training rows, early-stopped on the validation rows; ``callbacks`` are
        Keras callbacks and do not apply."""
        import joblib

        builder = self.family.builder_module()
        say(f"model [cyan]{config.model.type}[/]; run directory {escape(str(run.path))}")
        started = time.perf_counter()
        estimator, history = builder.fit(
            config.model, spec,
            (data.model_inputs("train"), data.targets["train"]),
            (data.model_inputs("valid"), data.targets["valid"]),
            seed=config.seed,
        )
        seconds = time.perf_counter() - started
        from tabcli.runs.run_dir import write_atomic

        write_atomic(run.file(self.model_file), lambda tmp: joblib.dump(estimator, tmp))
        run.update(parameters=builder.parameter_count(estimator), context_rows=[])
        return (lambda inputs, split, rows=None: builder.predict_raw(estimator, spec, inputs)), history, seconds

    def load(self, path: Path, config, info: dict):
        """The estimator in ``path/model.joblib``."""
        import joblib

        return joblib.load(Path(path) / self.model_file)

    def predict(self, model, inputs: dict[str, np.ndarray], spec, batch_size: int) -> np.ndarray:
        """The builder's ``predict_raw`` on all rows at once (trees need no batching)."""
        return self.family.builder_module().predict_raw(model, spec, inputs)
