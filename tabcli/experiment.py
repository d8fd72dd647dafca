"""One training run end to end: data -> model -> training -> run directory."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape

from tabcli.config import ExperimentConfig, config_to_yaml
from tabcli.data.prepare import SPLITS, PreparedData, prepare_data
from tabcli.errors import TabcliError
from tabcli.models.spec import ModelSpec
from tabcli.predictions import frame_metrics, prediction_table
from tabcli.runs.run_dir import RunDirectory, default_run_dir, write_atomic, write_json_atomic

__all__ = ["TrainResult", "train_experiment", "build_keras_model", "split_metrics", "best_epoch"]


@dataclass
class TrainResult:
    """What a finished run produced.

    Attributes:
        run_dir: The run folder.
        metrics: ``{"train": {...}, "valid": {...}, "test": {...}}``.
        task: The task of the run.
        epochs: Epochs trained.
        seconds: Training time (fit only), in seconds.
        model_type: The model family (``gbdt`` counts boosting iterations as epochs).
    """

    run_dir: Path
    metrics: dict
    task: str
    epochs: int
    seconds: float
    model_type: str


def _context_rows(data: PreparedData, count: int, seed: int) -> tuple[dict[str, np.ndarray], list]:
    """A seeded random sample of ``count`` preprocessed training rows, and their row ids."""
    n = len(data.targets["train"])
    count = min(count, n)
    chosen = np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False)) if count else np.array([], int)
    rows = {k: v[chosen] for k, v in data.inputs["train"].items()}
    ids = data.frame("train").index.to_numpy()[chosen].tolist()
    return rows, ids


def _parts(model_config) -> list:
    """The model config itself, or an ensemble's branches."""
    return list(getattr(model_config, "branches", [model_config]))


def _context_count(model_config) -> int:
    """How many context rows the model stores (the largest of its tabular_attention parts)."""
    return max((getattr(b, "stored_context_rows", 0) for b in _parts(model_config)), default=0)


def _retrieval_parts(model_config) -> list:
    """The parts of the model (itself, or an ensemble's branches) with ``inter_sample: retrieval``."""
    return [b for b in _parts(model_config) if getattr(b, "inter_sample", None) == "retrieval"]


def _candidate_count(model_config) -> int | str | None:
    """How many retrieval candidates the model stores: None (no retrieval), a number, or "all"."""
    counts = [b.retrieval.candidates for b in _retrieval_parts(model_config)]
    if not counts:
        return None
    return "all" if "all" in counts else max(counts)


def _freeze_epochs(model_config) -> int | None:
    """The earliest ``retrieval.freeze_after_epochs`` of the model's retrieval parts, or None."""
    epochs = [b.retrieval.freeze_after_epochs for b in _retrieval_parts(model_config)
              if b.retrieval.freeze_after_epochs is not None]
    return min(epochs) if epochs else None


def _index_search(model_config) -> bool:
    """Whether the model's retrieval searches an approximate index (``retrieval.search: index``)."""
    return any(b.retrieval.search == "index" for b in _retrieval_parts(model_config))


def resolve_retrieval(model_config, training_rows: int) -> None:
    """Settle each retrieval part's ``search``, ``step_candidates`` and ``freeze_after_epochs``
    for its number of candidates among ``training_rows`` rows (in place), before the run's
    config.yaml is written."""
    for part in _retrieval_parts(model_config):
        count = part.retrieval.candidates
        part.retrieval.resolve(training_rows if count == "all" else min(int(count), training_rows))


def build_keras_model(config: ExperimentConfig, data: PreparedData, spec: ModelSpec):
    """The uncompiled Keras model of ``config.model`` for ``data``, with its stored rows.

    ``inter_sample: context`` parts store ``context_rows`` training rows, a seeded sample
    (``config.seed``); ``inter_sample: retrieval`` parts store every training row (or a seeded
    sample of ``retrieval.candidates``) as retrieval candidates (``tabcli.models.retrieval``); the
    other families ignore both.

    Returns:
        ``(model, context_ids, candidates)``: the model, the context rows' indices in the
        training table, and the :class:`~tabcli.models.retrieval.Candidates` (or None).
    """
    from tabcli.models.registry import build_model
    from tabcli.models.retrieval import choose_candidates

    context, context_ids = _context_rows(data, _context_count(config.model), config.seed)
    candidates = None
    count = _candidate_count(config.model)
    if count is not None:
        candidates = choose_candidates(
            data.model_inputs("train"), data.targets["train"], data.frame("train").index.to_numpy(), count, config.seed
        )
    model = build_model(config.model, spec, {k: v for k, v in context.items() if v.shape[1] > 0}, candidates)
    return model, context_ids, candidates


def split_metrics(data: PreparedData, predict) -> tuple[dict, dict[str, np.ndarray]]:
    """Metrics of ``predict`` on every split of ``data``, in the target's own units.

    Args:
        data: The prepared splits.
        predict: ``(inputs, split) -> (rows, num_outputs)`` raw model outputs.

    Returns:
        ``(metrics, outputs)``: ``{"train": {...}, "valid": {...}, "test": {...}}`` and the raw
        outputs of each split.
    """
    metrics, outputs = {}, {}
    for split in SPLITS:
        outputs[split] = predict(data.model_inputs(split), split)
        metrics[split] = frame_metrics(data.preprocessor, data.frame(split), outputs[split], what=f"the {split} rows")
    return metrics, outputs


def best_epoch(history) -> int:
    """1-based epoch with the lowest ``val_loss`` (the weights early stopping restored); the
    last epoch for histories without one (gbdt)."""
    return int(history["val_loss"].idxmin()) + 1 if "val_loss" in history else len(history)


def train_experiment(
    config: ExperimentConfig,
    run_dir: Path | None = None,
    console: Console | None = None,
    config_folder: Path | None = None,
    callbacks: Sequence = (),
) -> TrainResult:
    """Train one experiment and write its run directory.

    All user errors in the data (missing file or column, bad target) are raised before the
    run directory is created. Once it exists, ``run.json`` records the outcome: ``completed``,
    ``failed`` (with the error) or ``interrupted``.

    Args:
        config: The validated experiment config.
        run_dir: Exact run folder; default ``<output.dir>/<name>-<timestamp>``.
        console: Where progress and messages go (None: silent).
        config_folder: Folder of the config file, for the git commit in ``run.json``.
        callbacks: Extra Keras callbacks for the fit (e.g. `tabcli tune`'s pruning); ignored by gbdt.

    Returns:
        :class:`TrainResult`.

    Raises:
        TabcliError: For problems the user can fix (data, config, diverged training).
        KeyboardInterrupt: If interrupted (the run is marked ``interrupted`` first).
    """
    say = console.print if console is not None else (lambda *a, **k: None)
    data = prepare_data(config.data, seed=config.seed)
    schema = data.schema
    say(
        f"[bold]{config.name}[/]: task [cyan]{schema.task}[/], target '{schema.target}', "
        f"{len(schema.numerical)} numerical + {len(schema.categorical)} categorical columns; "
        f"rows train {len(data.targets['train'])} / valid {len(data.targets['valid'])} / test {len(data.targets['test'])}"
    )
    for note in schema.notes:
        say(f"[yellow]note:[/] {escape(note)}")
    spec = ModelSpec.from_preprocessor(data.preprocessor, config.training.batch_size)
    config.model.check_data(spec)  # e.g. multi_resolution on a table with one kind of column
    if config.tracking.mlflow:
        from tabcli.runs.tracking import require_mlflow

        require_mlflow()  # fail before training, not after

    run = RunDirectory(run_dir or default_run_dir(config.output.dir, config.name or "run"), config_folder)
    try:
        return _train_in(run, config, data, spec, console, say, callbacks)
    except KeyboardInterrupt as error:
        run.finish("interrupted", error="interrupted by the user (KeyboardInterrupt)")
        error.run_dir = run.path  # for the command line's message
        raise
    except TabcliError as error:
        run.finish("failed", error=str(error))
        raise
    except BaseException as error:
        run.finish("failed", error=f"{type(error).__name__}: {error}")
        error.run_dir = run.path
        raise


def _fit_gbdt(run: RunDirectory, config: ExperimentConfig, data: PreparedData, spec: ModelSpec, say):
    """Fit the scikit-learn baseline; returns ``(predict, history, seconds)``."""
    import joblib

    from tabcli.models.gbdt import model as gbdt

    say(f"model [cyan]gbdt[/] (HistGradientBoosting); run directory {escape(str(run.path))}")
    started = time.perf_counter()
    estimator, history = gbdt.fit(
        config.model, spec,
        (data.model_inputs("train"), data.targets["train"]),
        (data.model_inputs("valid"), data.targets["valid"]),
        seed=config.seed,
    )
    seconds = time.perf_counter() - started
    write_atomic(run.file("model.joblib"), lambda tmp: joblib.dump(estimator, tmp))
    run.update(parameters=gbdt.parameter_count(estimator), context_rows=[])
    return (lambda inputs, split: gbdt.predict_raw(estimator, spec, inputs)), history, seconds


def _fit_keras(run: RunDirectory, config: ExperimentConfig, data: PreparedData, spec: ModelSpec, console, say,
               extra_callbacks: Sequence = ()):
    """Build, train and save a Keras family; returns ``(predict, history, seconds)``."""
    from tabcli._quiet import import_keras_quietly

    import_keras_quietly()
    from tabcli.models.registry import attention_manifest
    from tabcli.runs.attention import collect_attention, save_attention
    from tabcli.training.trainer import compile_model, configure_threads, fit_model, predict_model, set_seeds

    schema = data.schema
    configure_threads()
    set_seeds(config.seed)
    model, context_ids, candidates = build_keras_model(config, data, spec)
    compile_model(model, schema.task, config.training)
    run.update(parameters=int(model.count_params()), context_rows=context_ids,
               retrieval_candidates=0 if candidates is None else len(candidates.ids))
    say(f"model [cyan]{config.model.type}[/]: {model.count_params():,} parameters; run directory {escape(str(run.path))}")
    callbacks = list(extra_callbacks)
    if config.output.tensorboard:
        import keras

        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run.path / "tensorboard"), write_graph=False, profile_batch=0))
    started = time.perf_counter()
    train_inputs = data.model_inputs("train")
    from tabcli.models.retrieval import FreezeContexts, with_candidate_index

    through_index = candidates is not None and _index_search(config.model)
    if candidates is not None:
        train_inputs = with_candidate_index(model, train_inputs, candidates.training_index())
        if through_index:
            from tabcli.models.key_indexes import RefreshKeyIndexes

            callbacks.append(RefreshKeyIndexes(config.seed))
        freeze = _freeze_epochs(config.model)
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
    write_atomic(run.file("model.keras"), model.save)
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
        collected = collect_attention(
            model,
            data.model_inputs("test"),
            attention_manifest(config.model, spec, context_ids),
            row_ids=data.frame("test").index.tolist(),
            batch_size=config.training.eval_batch_size,
            decode_target=data.preprocessor.decode_target,
        )
        if collected is not None:
            save_attention(run.path / "attention", "test", *collected)
    weighting = next((layer for layer in model.layers if hasattr(layer, "module_weights")), None)
    if weighting is not None:
        from tabcli.models.ensemble.model import branch_names

        weights = dict(zip(branch_names(config.model), np.asarray(weighting.module_weights).tolist()))
        write_json_atomic(run.file("branch_weights.json"), weights)
        say("branch weights: " + ", ".join(f"{k} {v:.3f}" for k, v in weights.items()))

    def predict(inputs, split):
        # Training rows of a retrieval model name themselves, so their metrics are leave-one-out
        # (a row reading its own label would make the train metrics meaningless).
        if candidates is not None and split == "train":
            inputs = with_candidate_index(model, inputs, candidates.training_index())
        return predict_model(model, inputs, config.training.eval_batch_size)

    return predict, history, seconds


def _train_in(run: RunDirectory, config: ExperimentConfig, data: PreparedData, spec: ModelSpec, console, say,
              callbacks: Sequence = ()) -> TrainResult:
    import joblib

    schema = data.schema
    resolve_retrieval(config.model, len(data.targets["train"]))
    run.file("config.yaml").write_text(config_to_yaml(config), encoding="utf-8")
    run.update(seed=config.seed, name=config.name, model_type=config.model.type, task=schema.task, schema=schema.to_dict())
    write_atomic(run.file("preprocessing.joblib"), lambda tmp: joblib.dump(data.preprocessor, tmp))
    if config.model.type == "gbdt":
        predict, history, seconds = _fit_gbdt(run, config, data, spec, say)
    else:
        predict, history, seconds = _fit_keras(run, config, data, spec, console, say, callbacks)
    history.to_csv(run.file("history.csv"), index=False)

    metrics, outputs = split_metrics(data, predict)
    frame = data.frame("test")
    table = prediction_table(data.preprocessor, outputs["test"])
    table.insert(0, "target", frame[schema.target].to_numpy())
    table.insert(0, "row", frame.index.to_numpy())
    table.to_parquet(run.file("predictions/test.parquet"), index=False)

    write_json_atomic(run.file("metrics.json"), metrics)
    if config.tracking.mlflow:
        from tabcli.runs.tracking import log_to_mlflow

        run.update(mlflow_run_id=log_to_mlflow(config, run.path, metrics))
    run.update(epochs_trained=len(history), best_epoch=best_epoch(history), train_seconds=round(seconds, 3))
    run.finish("completed")
    return TrainResult(run_dir=run.path, metrics=metrics, task=schema.task, epochs=len(history), seconds=seconds,
                       model_type=config.model.type)
