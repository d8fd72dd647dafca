"""The Keras backend: every attention family and the MLP, saved as ``model.keras``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.markup import escape

from tabcli.errors import ConfigError
from tabcli.models.backends.base import Backend, Fitted
from tabcli.models.stored_rows import build_keras_model, freeze_epochs, resolve_retrieval, searches_index
from tabcli.runs.run_dir import BRANCH_WEIGHTS_FILE, write_atomic, write_json_atomic

__all__ = ["KerasBackend"]


class KerasBackend(Backend):
    """Families whose builder module defines ``build(config, spec, context, candidates) ->
    keras.Model`` and ``attention_manifest(config, spec, context_ids)``."""

    model_file = "model.keras"
    iteration_unit = "epochs"
    can_prune = True
    uses_training_settings = True
    has_attention = True

    def prepare(self) -> None:
        """Import Keras without TensorFlow's C++ start-up lines (:func:`tabcli.models.backends.quiet.import_keras_quietly`),
        before anything else (the input pipeline) pulls it in, and register tabcli's layers, so that
        every path through this backend (training, loading a saved model) can name them."""
        from tabcli.models.backends.quiet import import_keras_quietly

        import_keras_quietly()
        import tabcli.layers  # noqa: F401 - registers the custom layers with Keras' serialisation

    def configure_threads(self) -> None:
        """:func:`tabcli.training.trainer.configure_threads`."""
        from tabcli.training.trainer import configure_threads

        configure_threads()

    def resolve_config(self, model_config, training_rows: int) -> None:
        """Each retrieval part's ``search``, ``step_candidates`` and ``freeze_after_epochs`` for
        its number of candidates (:func:`~tabcli.models.stored_rows.resolve_retrieval`)."""
        resolve_retrieval(model_config, training_rows)

    def fit(self, run, config, data, spec, console, say, extra_callbacks: Sequence = ()) -> Fitted:
        """Build the model with its stored rows (:func:`~tabcli.models.stored_rows.build_keras_model`),
        train it with early stopping, save ``model.keras`` (and a retrieval model's key indexes),
        the test split's attention scores and an ensemble's ``branch_weights.json``."""
        self.prepare()
        from tabcli.models.registry import attention_manifest
        from tabcli.runs.attention import collect_attention, save_attention
        from tabcli.training.trainer import compile_model, fit_model, predict_model, set_seeds

        schema = data.schema
        self.configure_threads()
        set_seeds(config.seed)
        model, context_ids, candidates = build_keras_model(config, data, spec)
        compile_model(model, schema.task, config.training)
        # Trainable weights only: the stored candidates and context rows are data held in
        # non-trainable weights, and would count ten per training row.
        parameters = int(sum(np.prod(weight.shape) for weight in model.trainable_weights))
        run.update(parameters=parameters, context_rows=context_ids,
                   retrieval_candidates=0 if candidates is None else len(candidates.ids))
        say(f"model [cyan]{config.model.type}[/]: {parameters:,} trainable parameters; run directory {escape(str(run.path))}")
        callbacks = list(extra_callbacks)
        if config.output.tensorboard:
            import keras

            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run.path / "tensorboard"), write_graph=False, profile_batch=0))
        started = time.perf_counter()
        train_inputs = data.model_inputs("train")
        from tabcli.models.candidates import FreezeContexts, with_candidate_index

        through_index = candidates is not None and searches_index(config.model)
        if candidates is not None:
            train_inputs = with_candidate_index(model, train_inputs, candidates.training_index())
            if through_index:
                from tabcli.models.key_indexes import RefreshKeyIndexes

                callbacks.append(RefreshKeyIndexes(config.seed))
            freeze = freeze_epochs(config.model)
            if freeze is not None:  # the config allows it only with candidates: all (RetrievalOptions)
                callbacks.append(FreezeContexts(freeze, through_index=through_index, seed=config.seed))
        history = fit_model(
            model,
            schema.task,
            (train_inputs, data.targets["train"]),
            (data.model_inputs("valid"), data.targets["valid"]),
            config.training,
            console=console,
            extra_callbacks=callbacks,
        )
        seconds = time.perf_counter() - started
        # Written whole or not at all: a full disk must not leave a model.keras that looks usable.
        write_atomic(run.file(self.model_file), model.save)
        if through_index:  # indexes of the final (restored) weights, searched by every later call
            from tabcli.models.key_indexes import INDEX_FOLDER, build_indexes, measure_recall, save_indexes

            build_indexes(model, config.seed)
            save_indexes(model, run.path / INDEX_FOLDER)
            recall = measure_recall(model, data.model_inputs("valid"), seed=config.seed)
            run.update(retrieval_index=recall)
            say("retrieval index: " + ", ".join(
                f"{name} recall@{entry['k']} {entry['recall_at_k']:.3f} over {entry['rows']} validation rows "
                f"(nprobe {entry['nprobe']} of {entry['nlist']} lists)" for name, entry in recall.items()))

        if config.output.save_attention:
            kept = config.output.attention_rows  # every row's scores of a large split would not fit in memory
            collected = collect_attention(
                model,
                {name: value[:kept] for name, value in data.model_inputs("test").items()},
                attention_manifest(config.model, spec, context_ids),
                row_ids=data.frame("test").index.tolist()[:kept],
                batch_size=config.training.eval_batch_size,
                decode_target=data.preprocessor.decode_target,
            )
            if collected is not None:
                save_attention(run.path / "attention", "test", *collected)
        weighting = next((layer for layer in model.layers if hasattr(layer, "module_weights")), None)
        if weighting is not None:
            from tabcli.models.ensemble.model import branch_names

            weights = dict(zip(branch_names(config.model), np.asarray(weighting.module_weights).tolist()))
            write_json_atomic(run.file(BRANCH_WEIGHTS_FILE), weights)
            say("branch weights: " + ", ".join(f"{k} {v:.3f}" for k, v in weights.items()))

        def predict(inputs, split, rows=None):
            # Training rows of a retrieval model name themselves, so their metrics are leave-one-out
            # (a row reading its own label would make the train metrics meaningless).
            if candidates is not None and split == "train":
                index = candidates.training_index()
                inputs = with_candidate_index(model, inputs, index if rows is None else index[rows])
            return predict_model(model, inputs, config.training.eval_batch_size)

        return predict, history, seconds

    def load(self, path: Path, config, info: dict):
        """``model.keras``, uncompiled, with a retrieval model's key indexes attached."""
        import keras

        self.prepare()

        path = Path(path)
        try:
            # Not compiled: a loaded run only predicts, and building the optimizer and reading its
            # state back costs a fifth of the load.
            model = keras.saving.load_model(path / self.model_file, compile=False)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as error:  # noqa: BLE001 - any deserialisation failure is the same advice
            commit = info.get("git_commit")
            written = f"at commit {commit[:10]}" if commit else info.get("versions", {}).get("tabcli", "of an unknown version")
            cause = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise ConfigError(
                f"The model file '{path / self.model_file}' cannot be loaded by this tabcli "
                f"({type(error).__name__}: {cause[:300]}). The run was written by tabcli {written}; a model "
                "saved by a development version whose layers have since changed, or a damaged file, cannot "
                "be read. Retrain it: `tabcli train " + str(path / "config.yaml") + "`."
            ) from error
        from tabcli.models.key_indexes import INDEX_FOLDER, load_indexes

        load_indexes(model, path / INDEX_FOLDER, seed=config.seed)
        return model

    def predict(self, model, inputs: dict[str, np.ndarray], spec, batch_size: int) -> np.ndarray:
        """:func:`~tabcli.training.trainer.predict_model`: one traced function, ``batch_size`` rows a call."""
        from tabcli.training.trainer import predict_model

        return predict_model(model, inputs, batch_size)

    def release(self) -> None:
        """Clear Keras' global state: one trial's graphs must not pile up over a long search."""
        import keras

        keras.utils.clear_session(free_memory=True)
