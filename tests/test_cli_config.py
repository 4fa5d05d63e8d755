"""Run configuration (TOML/JSON, validation with did-you-mean), unit selection and atomic run folders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import spikefield as sf
from spikefield.config import RunConfig, SimulationConfig, from_mapping, load_config
from spikefield.errors import RecordingError, ValidationError
from spikefield.runs import RunFolderError, atomic_directory, is_run_folder, load_run, select_units


# ---------------------------------------------------------------------- config
def test_toml_round_trip(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('data = "rec.nwb"\nbin_size = 0.02\nquality = "good"\nanalyses = ["spatial"]\n'
                    "[simulation]\nn_cells = 30\n")
    cfg = load_config(path)
    assert cfg.bin_size == 0.02 and cfg.quality == ["good"] and cfg.analyses == ["spatial"]
    assert cfg.simulation == SimulationConfig(n_cells=30)
    # A run folder's config.json (settings nested under "config") reads back to the same settings.
    (tmp_path / "config.json").write_text(json.dumps({"config": cfg.to_dict(), "spikefield_version": "x"}))
    assert load_config(tmp_path) == cfg
    assert load_config(tmp_path / "config.json") == cfg


def test_relative_data_path_is_relative_to_the_config_file(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "run.toml").write_text('data = "recordings/rec.nwb"\n')
    monkeypatch.chdir(tmp_path)  # a different working directory must not change what the file means
    assert load_config("project/run.toml").data == str(folder / "recordings" / "rec.nwb")
    (folder / "abs.toml").write_text(f'data = "{tmp_path / "elsewhere.nwb"}"\n')
    assert load_config(folder / "abs.toml").data == str(tmp_path / "elsewhere.nwb")


def test_replace_overrides_only_given_values():
    cfg = RunConfig(bin_size=0.02, epoch="run")
    new = cfg.replace(bin_size=None, min_rate=0.5)
    assert (new.bin_size, new.epoch, new.min_rate) == (0.02, "run", 0.5)
    assert cfg.min_rate == 0.0  # immutable


@pytest.mark.parametrize(("settings", "message"), [
    ({"bin_sise": 0.01}, r"unknown key 'bin_sise'\. Did you mean 'bin_size'\?"),
    ({"simulation": {"n_cell": 5}}, r"\[simulation\]: unknown key 'n_cell'\. Did you mean 'n_cells'\?"),
    ({"bin_size": -0.01}, r"bin_size must be > 0, got -0\.01"),
    ({"bin_size": "10ms"}, r"bin_size must be a number, got '10ms'"),
    ({"test_fraction": 1.0}, r"test_fraction must be > 0 and <= 0\.9, got 1\.0"),
    ({"min_rate": -1}, r"min_rate must be >= 0, got -1"),
    ({"model": "kinetic_isign"}, r"model='kinetic_isign' is not one of \['kinetic_ising'\]\. Did you mean"),
    ({"device": "gpu"}, r"device must be 'auto', 'cpu' or 'cuda\[:k\]', got 'gpu'"),
    ({"units": [1, 2]}, r"units must be a list of strings, got \[1, 2\]"),
    ({"max_iter": 0}, r"max_iter must be >= 1, got 0"),
    ({"n_sample_bins": 10.5}, r"n_sample_bins must be an integer, got 10\.5"),
    ({"seed": True}, r"seed must be an integer, got True"),
    ({"simulation": {"run_duration": 0}}, r"simulation\.run_duration must be > 0, got 0"),
    ({"simulation": 3}, r"\[simulation\] must be a table, got 3"),
])
def test_config_errors(settings, message):
    with pytest.raises(ValidationError, match=message):
        from_mapping(settings)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("missing.toml", None, r"missing\.toml: no such file"),
    ("broken.toml", "bin_size = = 3", r"broken\.toml: not valid TOML"),
    ("broken.json", "{", r"broken\.json: not valid JSON"),
    ("list.json", "[1, 2]", r"expected a table of settings, got list"),
])
def test_config_file_errors(tmp_path, name, text, message):
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(ValidationError, match=message):
        load_config(tmp_path / name)


# ---------------------------------------------------------------------- unit selection
@pytest.fixture
def labelled_recording():
    trains = [np.linspace(0, 9, 50), np.linspace(0, 9, 5), np.array([5.0]), np.linspace(0, 9, 80)]
    units = pd.DataFrame({"quality": ["good", "mua", "good", "good"]})
    return sf.Recording(trains, unit_ids=["a", "b", "c", "d"], units=units, epochs={"run": [[0, 4]]},
                        support=[[0, 10]])


def test_select_units_applies_quality_rate_and_epoch(labelled_recording):
    rec = select_units(labelled_recording, RunConfig(quality=["good"], min_rate=1.0, epoch="run"))
    assert list(rec.unit_ids) == ["a", "d"]  # b is mua; c has no spike in the run epoch
    assert rec.duration == pytest.approx(4.0)


@pytest.mark.parametrize(("config", "error", "message"), [
    (RunConfig(min_rate=100.0), RecordingError, r"0 unit\(s\) left after selection .* at least 2 are needed"),
    (RunConfig(epoch="rn"), RecordingError, r"no epoch named 'rn'.*Did you mean 'run'\?"),
    (RunConfig(units=["a", "zz"]), RecordingError, r"names unit 'zz', which does not exist"),
])
def test_select_units_errors(labelled_recording, config, error, message):
    with pytest.raises(error, match=message):
        select_units(labelled_recording, config)


def test_quality_needs_a_quality_column():
    rec = sf.Recording([[0.1, 0.2], [0.3]], unit_ids=["a", "b"])
    with pytest.raises(RecordingError, match=r"--quality needs a 'quality' column"):
        select_units(rec, RunConfig(quality=["good"]))


# ---------------------------------------------------------------------- atomic run folders
def test_atomic_directory_commits_only_on_success(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(target) as tmp:
            (tmp / "config.json").write_text("{}")
            raise KeyboardInterrupt  # a user's Ctrl-C in the middle of a run
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(target) as tmp:
        for name in ("config.json", "metrics.json"):
            (tmp / name).write_text("{}")
    assert is_run_folder(target) and [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.parametrize(("setup", "message"), [
    ("file", r"is a file; expected a folder"),
    ("foreign", r"folder exists and is not a spikefield run"),
])
def test_atomic_directory_never_replaces_user_data(tmp_path, setup, message):
    target = tmp_path / "out"
    if setup == "file":
        target.write_text("data")
    else:
        target.mkdir()
        (target / "thesis.tex").write_text("precious")
    with pytest.raises(RunFolderError, match=message):
        with atomic_directory(target):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize(("files", "message"), [
    ({}, r"missing config\.json, metrics\.json"),
    ({"config.json": "{}", "metrics.json": "{"}, r"not valid JSON"),
])
def test_load_run_errors(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(RunFolderError, match=message):
        load_run(tmp_path)
