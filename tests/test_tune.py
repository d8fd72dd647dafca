"""`tabcli tune`: the space grammar, trials as ordinary runs, failed trials, pruning, resume, best.yaml,
and worker processes on one SQLite study (processes on a PostgreSQL study: test_tune_postgres.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import DATASETS, REPO
from tabcli.cli import app
from tabcli.config.loader import validate_config
from tabcli.errors import ConfigError
from tabcli.tune.space import default_space, resolve_space, starting_values

pytestmark = pytest.mark.slow  # end to end: trains models or runs real processes

runner = CliRunner()
PENGUINS = DATASETS / "penguins.csv"


def _config(tmp_path, space=None, **tune) -> "os.PathLike":
    config = {
        "seed": 3,
        "data": {"train": str(PENGUINS), "target": "species"},
        "model": {"type": "tabular_attention", "d_model": 16, "num_heads": 2, "num_feature_blocks": 1,
                  "inter_sample": "none"},
        "training": {"epochs": 4, "batch_size": 64},
        "output": {"dir": str(tmp_path / "runs"), "tensorboard": False, "save_attention": False},
        "tune": {"space": space if space is not None else {"model.dropout_rate": {"float": [0.0, 0.3]},
                                                           "training.learning_rate": {"float": [1e-3, 1e-2], "log": True}},
                 **tune},
    }
    path = tmp_path / "penguins.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _base(**tune):
    return validate_config({"data": {"train": "t.csv", "target": "y"}, "tune": tune})


# ------------------------------------------------------------------ space grammar
@pytest.mark.parametrize("entry, message", [
    ({"int": [5, 1]}, "low <= high"),
    ({"float": [0.0, 1.0], "log": True}, "low > 0"),
    ({"int": [1, 4], "choice": [1]}, "exactly one of"),
    ({}, "exactly one of"),
    ({"choice": []}, "at least one value"),
    ({"choice": [[1, 2]]}, "numbers, strings"),
    ({"float": [1e-4, 1e-2], "log": True, "step": 0.1}, "step cannot be combined"),
    ({"float": [0, 1], "scale": "log"}, "unknown key 'tune.space.x.scale'"),
    ({"float": [0, 1], "when": {}}, "when needs at least one"),
])
def test_space_entries_are_validated(entry, message):
    with pytest.raises(ConfigError) as error:
        _base(space={"x": entry})
    assert message in str(error.value) and "tune.space.x" in str(error.value)


def test_space_keys_must_be_config_keys_and_values_must_be_valid():
    with pytest.raises(ConfigError) as error:
        resolve_space(_base(space={"model.dmodel": {"int": [16, 64]}, "training.learning_rate": {"float": [1e-4, 2.0]},
                                   "model": {"choice": [1]}}))
    text = str(error.value)
    assert "'tune.space.model.dmodel' is not a key of this config. Did you mean 'model.d_model'?" in text
    assert "'tune.space.training.learning_rate' offers 2.0" in text and "less than or equal to 1" in text
    assert "'tune.space.model' is a section" in text
    with pytest.raises(ConfigError, match="validation split only"):
        _base(metric="test.rmse")
    with pytest.raises(ConfigError, match="cannot be searched"):
        _base(space={"output.dir": {"choice": ["a"]}})


@pytest.mark.parametrize("family", ["tabular_attention", "multi_resolution", "interpretable", "ensemble", "mlp", "gbdt"])
def test_every_family_has_a_valid_default_space(family):
    config = validate_config({"data": {"train": "t.csv", "target": "y"}, "model": {"type": family}})
    space = resolve_space(config)  # raises if a default bound were refused by the config
    assert space == default_space(config) and len(space) >= 3
    assert ("training.learning_rate" in space) == (family != "gbdt")
    retrieval = validate_config({"data": {"train": "t.csv", "target": "y"}, "model": {"inter_sample": "retrieval"}})
    assert "model.retrieval.k" in resolve_space(retrieval)


def test_starting_values_keep_only_values_inside_the_space():
    from tabcli.config.tune import SearchDimension

    base = {"model": {"d_model": 64, "dropout_rate": 0.1, "num_heads": 8, "kind": "a"}, "training": {"learning_rate": 1e-3}}
    space = {key: SearchDimension.model_validate(value) for key, value in {
        "model.d_model": {"int": [16, 128], "step": 16},   # 64 on the grid
        "model.dropout_rate": {"float": [0.2, 0.5]},      # 0.1 outside: sampled
        "model.num_heads": {"choice": [2, 4]},            # 8 not offered: sampled
        "model.kind": {"choice": ["a", "b"]},
        "training.learning_rate": {"float": [1e-4, 3e-3], "log": True},
    }.items()}
    assert starting_values(base, space) == {"model.d_model": 64, "model.kind": "a", "training.learning_rate": 1e-3}
    off_grid = {"model.d_model": SearchDimension.model_validate({"int": [16, 128], "step": 20})}
    assert starting_values(base, off_grid) == {}


def test_conditional_keys_are_searched_only_where_their_condition_holds():
    import optuna

    from tabcli.tune.space import suggest

    config = validate_config({"data": {"train": "t.csv", "target": "y"},
                              "model": {"type": "tabular_attention", "inter_sample": "context"}})
    space, base = resolve_space(config), config.model_dump(mode="json")
    assert space["model.inter_sample"].choice == ["context", "retrieval"]
    start = starting_values(base, space)  # the config is context: retrieval's keys are not part of trial 0
    assert start["model.inter_sample"] == "context" and not any(k.startswith("model.retrieval.") for k in start)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        values = suggest(trial, space, base)
        mode = values["model.inter_sample"]
        seen.add(mode)
        assert ("model.retrieval.k" in values) == (mode == "retrieval") == ("model.retrieval.k" in trial.params)
        study.tell(trial, 0.0)
    assert seen == {"context", "retrieval"}
    retrieval = validate_config({"data": {"train": "t.csv", "target": "y"}, "model": {"inter_sample": "retrieval"}})
    assert starting_values(retrieval.model_dump(mode="json"), resolve_space(retrieval))["model.retrieval.k"] == 96
    with pytest.raises(ConfigError) as error:
        resolve_space(_base(space={"model.d_model": {"choice": [32], "when": {"model.num_heads": 4}},
                                   "model.num_heads": {"choice": [4, 8]},
                                   "model.dropout_rate": {"float": [0, 0.3], "when": {"model.dropuot": 1}},
                                   "model.ffn_multiplier": {"float": [1, 2], "when": {"model.inter_sample": "retrievl"}}}))
    assert "'model.num_heads', which is searched after it" in str(error.value)
    assert "names 'model.dropuot', which is not a key" in str(error.value)
    assert "waits for model.inter_sample='retrievl', which the config refuses" in str(error.value)


def test_durations():
    from tabcli.tune.runner import parse_duration

    assert [parse_duration(t) for t in ("90", "90s", "20m", "1h30m", None)] == [90, 90, 1200, 5400, None]
    with pytest.raises(ConfigError, match="--timeout"):
        parse_duration("ten minutes")


# ------------------------------------------------------------------ searches
def test_trials_are_runs_best_yaml_retrains_and_resume_adds_trials(tmp_path):
    config = _config(tmp_path)
    out = tmp_path / "tune"
    result = runner.invoke(app, ["tune", str(config), "--trials", "2", "--output", str(out)])
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["trial"]) == [0, 1] and set(trials["state"]) <= {"complete", "pruned"}
    # trial 0 is the starting config (tune.start_from_config), trial 1 sampled
    start = validate_config(yaml.safe_load(config.read_text()))
    assert trials.loc[0, "model.dropout_rate"] == pytest.approx(start.model.dropout_rate)
    assert trials.loc[0, "training.learning_rate"] == pytest.approx(start.training.learning_rate)
    assert trials.loc[1, "training.learning_rate"] != pytest.approx(start.training.learning_rate)
    for row in trials.itertuples():
        info = json.loads((out / "trials" / f"trial-{row.trial:04d}" / "run.json").read_text())
        metrics = json.loads((out / "trials" / f"trial-{row.trial:04d}" / "metrics.json").read_text())
        assert info["status"] == "completed"
        assert metrics["valid"]["accuracy"] == pytest.approx(getattr(row, "_3"))  # valid.accuracy column
    stamps = {p: p.stat().st_mtime_ns for p in (out / "trials").glob("*/run.json")}

    # The same folder again without --resume: refused, nothing touched.
    again = runner.invoke(app, ["tune", str(config), "--trials", "1", "--output", str(out)])
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = runner.invoke(app, ["tune", str(config), "--trials", "1", "--output", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["trial"]) == [0, 1, 2]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished trials never re-run

    best = yaml.safe_load((out / "best.yaml").read_text())
    best_row = trials.loc[trials["valid.accuracy"].idxmax()]
    assert best["model"]["dropout_rate"] == pytest.approx(best_row["model.dropout_rate"])
    assert best["training"]["learning_rate"] == pytest.approx(best_row["training.learning_rate"])
    retrained = runner.invoke(app, ["train", str(out / "best.yaml"), "--run-dir", str(tmp_path / "best"), "-q"])
    assert retrained.exit_code == 0, retrained.output
    # Same config, same seed: the retrained run reproduces the best trial's validation metric.
    valid = json.loads((tmp_path / "best" / "metrics.json").read_text())["valid"]["accuracy"]
    assert valid == pytest.approx(best_row["valid.accuracy"], abs=1e-6)


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path):
    # Each value is valid alone (d_model 24 with 2 heads, 16 heads with d_model 16), never together.
    config = _config(tmp_path, space={"model.d_model": {"choice": [24]}, "model.num_heads": {"choice": [16]}})
    out = tmp_path / "tune"
    result = runner.invoke(app, ["tune", str(config), "--trials", "3", "--output", str(out)])
    assert result.exit_code == 1 and "No trial completed" in result.output
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["trial"]) == [0, 1, 2] and set(trials["state"]) == {"fail"}
    assert trials["error"].str.contains("must be divisible by num_heads").all()
    assert not (out / "best.yaml").exists()


def test_wrong_space_or_data_stops_before_any_trial(tmp_path):
    config = _config(tmp_path, space={"model.dropout": {"float": [0, 0.5]}})
    result = runner.invoke(app, ["tune", str(config), "--trials", "2", "--output", str(tmp_path / "tune")])
    assert result.exit_code == 2 and "Did you mean 'model.dropout_rate'" in result.output
    assert not (tmp_path / "tune").exists()
    config = _config(tmp_path)
    result = runner.invoke(app, ["tune", str(config), "--set", "data.target=nope", "--output", str(tmp_path / "tune")])
    assert result.exit_code == 2 and "nope" in result.output and not (tmp_path / "tune").exists()
    result = runner.invoke(app, ["tune", str(config), "--set", "tune.metric=rmse", "--output", str(tmp_path / "tune")])
    assert result.exit_code == 2 and "'rmse' is not a metric of a multiclass task" in result.output
    assert not (tmp_path / "tune").exists()


def test_pruning_stops_an_unpromising_trial_early():
    """Real Keras training and a real Optuna pruner: after two good trials, a model that cannot
    learn (learning rate 1e-9) is stopped at the first epoch the median pruner may act on."""
    import keras
    import optuna

    from tabcli.tune.pruning import PruningCallback

    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2))
    for _ in range(2):
        good = study.ask()
        for epoch in range(20):
            good.report(0.1, step=epoch)
        study.tell(good, 0.1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e-9), loss="mse", metrics=[keras.metrics.RootMeanSquaredError(name="rmse")])
    trial = study.ask()
    callback = PruningCallback(trial, "val_rmse")
    history = model.fit(x, y, validation_split=0.25, epochs=20, verbose=0, callbacks=[callback])
    assert callback.pruned_at == 3 and len(history.history["loss"]) == 3
    assert trial.should_prune()


def test_parallel_workers_refit_on_one_split_and_report(tmp_path):
    """--jobs 2 runs trials in two worker processes; --refit compares the best and the starting
    config over seeds on the search's own split; the report ties it together."""
    config = _config(tmp_path, space={"model.dropout_rate": {"float": [0.0, 0.3]}})
    out = tmp_path / "tune"
    result = runner.invoke(app, ["tune", str(config), "--trials", "2", "--jobs", "2", "--refit", "2", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "refit best: test.accuracy" in result.output
    import optuna

    trials = optuna.load_study(study_name="penguins", storage=f"sqlite:///{out / 'study.db'}").get_trials()
    assert len(trials) == 2 and len({t.user_attrs["pid"] for t in trials}) == 2  # one trial per worker
    refit = json.loads((out / "refit.json").read_text())
    assert refit["seeds"] == [3, 4] and refit["metric"] == "test.accuracy"
    rows = {}
    for label in ("default", "best"):
        assert len(refit[label]["values"]) == 2
        for seed in (3, 4):
            run = out / "refit" / f"{label}-{seed}"
            metrics = json.loads((run / "metrics.json").read_text())
            assert metrics["test"]["accuracy"] in refit[label]["values"]
            rows[(label, seed)] = list(pd.read_parquet(run / "predictions" / "test.parquet")["row"])
            # --jobs 2: each refit run trained in its own `tabcli train` process, from a complete config
            assert validate_config(yaml.safe_load(run.with_suffix(".yaml").read_text())).seed == seed
    assert all(r == rows[("default", 3)] for r in rows.values())  # every refit run tested on the search's split
    report = (out / "report.html").read_text()
    assert "Best trial" in report and "Refit: test.accuracy" in report and report.count("data:image/png;base64,") >= 1
    assert {p.name for p in (out / "plots").iterdir()} >= {"history.png"}


def test_docs_list_every_default_key():
    docs = (REPO / "docs" / "tuning.md").read_text()
    for family in ("tabular_attention", "multi_resolution", "interpretable", "ensemble", "mlp", "gbdt"):
        extra = {"inter_sample": "retrieval"} if family == "tabular_attention" else {}
        config = validate_config({"data": {"train": "t.csv", "target": "y"}, "model": {"type": family, **extra}})
        missing = [key for key in default_space(config) if f"`{key}`" not in docs]
        assert not missing, f"docs/tuning.md does not list {missing} of {family}"
