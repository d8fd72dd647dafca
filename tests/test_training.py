"""The input pipeline and the trainer: every row once per epoch, one graph trace, same predictions."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tabcli.config.experiment import TrainingConfig
from tabcli.training.pipeline import batches, predict_in_batches
from tabcli.training.trainer import compile_model, fit_model, predict_model, set_seeds


def _inputs(n=70, seed=0):
    rng = np.random.default_rng(seed)
    return {"numerical": rng.normal(size=(n, 3)).astype("float32"),
            "categorical": rng.integers(0, 4, size=(n, 2)).astype("int32")}


def test_batches_cover_every_row_once_with_a_remainder_batch_and_reshuffle():
    import tensorflow as tf

    x = _inputs()
    y = np.arange(70, dtype="float32")
    tf.random.set_seed(0)
    data = batches(x, y, batch_size=32, shuffle=True)
    # the batch dimension is unknown, so a graph traced on a full batch also fits the remainder
    assert data.element_spec[0]["numerical"].shape.as_list() == [None, 3]
    epochs = []
    for _ in range(2):
        sizes, order = [], []
        for xb, yb in data:
            sizes.append(len(yb))
            order.extend(yb.numpy().astype(int).tolist())
            # inputs and targets stay aligned row by row
            np.testing.assert_array_equal(xb["numerical"].numpy(), x["numerical"][yb.numpy().astype(int)])
        assert sizes == [32, 32, 6] and sorted(order) == list(range(70))
        epochs.append(order)
    assert epochs[0] != epochs[1] and epochs[0] != list(range(70))
    # the global seed (keras.utils.set_random_seed sets it) fixes the order: a rebuilt pipeline repeats it
    tf.random.set_seed(0)
    again = [int(v) for _, yb in batches(x, y, batch_size=32, shuffle=True) for v in yb.numpy()]
    assert again == epochs[0]
    # prediction batches keep the row order and hold inputs only
    ordered = np.concatenate([b["numerical"].numpy() for b in batches(x, None, batch_size=32)])
    np.testing.assert_array_equal(ordered, x["numerical"])


def test_batches_reject_inputs_of_different_lengths():
    x = _inputs()
    with pytest.raises(ValueError, match="same number of rows"):
        batches(x, np.zeros(69, dtype="float32"), batch_size=8)


def test_predict_in_batches_matches_one_call_for_every_output_and_a_remainder_batch():
    x = _inputs()  # 70 rows: batches of 32, 32 and 6
    model = _model()
    two = keras.Model(model.inputs, {"out": model.outputs[0], "twice": model.outputs[0] * 2.0})
    whole = two({k: keras.ops.convert_to_tensor(v) for k, v in x.items()})
    got = predict_in_batches(two, x, batch_size=32)
    assert set(got) == {"out", "twice"} and got["out"].shape == (70, 1)
    np.testing.assert_allclose(got["out"], np.asarray(whole["out"]), atol=1e-6)
    np.testing.assert_allclose(got["twice"], 2 * got["out"], atol=1e-6)
    with pytest.raises(ValueError, match="same number of rows"):
        predict_in_batches(model, {"numerical": x["numerical"], "categorical": x["categorical"][:5]}, batch_size=8)


def _model():
    numerical = keras.Input((3,), name="numerical")
    categorical = keras.Input((2,), name="categorical", dtype="int32")
    embedded = keras.layers.Flatten()(keras.layers.Embedding(4, 2)(categorical))
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([numerical, embedded]))
    return keras.Model({"numerical": numerical, "categorical": categorical}, keras.layers.Dense(1)(h))


def test_training_traces_the_step_once_and_predictions_do_not_depend_on_the_batch_size(monkeypatch):
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    traces = []
    original = TensorFlowTrainer.train_step
    monkeypatch.setattr(TensorFlowTrainer, "train_step", lambda self, data: traces.append(1) or original(self, data))
    set_seeds(0)
    x, rng = _inputs(), np.random.default_rng(1)
    y = x["numerical"][:, 0] * 2 + rng.normal(scale=0.1, size=70)
    config = TrainingConfig(epochs=3, batch_size=32, early_stopping_patience=5)
    model = _model()
    compile_model(model, "regression", config)
    # the optimizer's slots exist before the first step, so tracing does not create variables
    assert len(model.optimizer.variables) > 2
    history = fit_model(model, "regression", (x, y), (_inputs(20, seed=2), np.zeros(20)), config)
    assert len(history) == 3 and (history["seconds"] > 0).all()
    # 3 epochs of batches 32, 32, 6: one trace (optimizer variables created inside the first
    # step would make tf.function trace it again)
    assert len(traces) == 1
    np.testing.assert_allclose(predict_model(model, x, batch_size=7), predict_model(model, x, batch_size=64), atol=1e-6)
