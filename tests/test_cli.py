"""End-to-end tests of the `spikefield` command line (typer's CliRunner, in process)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import spikefield as sf
from spikefield.cli import app
from spikefield.errors import ReaderError

runner = CliRunner()

TINY_DEMO = """
n_sample_bins = 2000
analyses = ["spatial"]

[simulation]
n_cells = 12
run_duration = 60.0
rest_duration = 20.0
n_replay_events = 3
coupling_strength = 0.6
seed = 3
"""

CORE = ("summary", "raster", "firing_rates", "couplings", "likelihood", "moments")


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY_DEMO)
    return path


def _explode(ctx):
    raise RuntimeError("the analysis blew up\nsecond line")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, tiny_config) -> tuple[Path, dict]:
    """One tiny demo run shared by the tests below, with a deliberately failing extra analysis."""
    from spikefield.report import Section, SectionOutput, register_section, unregister_section

    register_section(Section("exploding", "Exploding analysis", 95, _explode, lambda r: SectionOutput(),
                             optional=True))
    out = tmp_path_factory.mktemp("runs") / "demo"
    try:
        result = invoke("demo", "--out", out, "--config", tiny_config, "--json", "--analyses", "spatial,exploding")
    finally:
        unregister_section("exploding")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


# ---------------------------------------------------------------------- demo / run folder
def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"spikefield {sf.__version__}"


def test_demo_writes_complete_run_folder(demo_run):
    out, printed = demo_run
    for name in ("config.json", "metrics.json", "model.npz", "report.html"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    assert printed["report"] == str(out / "report.html")
    assert metrics["data"]["n_units"] <= 12 and metrics["data"]["bin_size_s"] == 0.01
    for name in CORE:
        assert metrics["sections"][name]["status"] == "ok", (name, metrics["sections"][name]["reason"])
    # No partial or old folders left next to the run.
    assert [p.name for p in out.parent.iterdir()] == ["demo"]
    # Every figure file is embedded in the page.
    html = (out / "report.html").read_text()
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert len(figures) >= 6
    assert html.count('src="data:image/png;base64,') == len(figures)
    for name in figures:
        assert f'data-file="figures/{name}"' in html
    assert not re.search(r"""(src|href)=["']https?://""", html)  # self-contained: no external resources
    assert html.count("<figcaption>") == len(figures)
    headings = re.findall(r"<h2>(.*?)</h2>", html)
    assert headings[:3] == ["Recording summary", "Raster snippet", "Firing-rate distribution"]


def test_failed_optional_section_is_reported_not_fatal(demo_run):
    out, printed = demo_run
    entry = printed["sections"]["exploding"]
    assert entry["status"] == "failed" and entry["reason"] == "RuntimeError: the analysis blew up"
    assert "section failed: RuntimeError: the analysis blew up" in (out / "report.html").read_text()
    assert "thermo" not in printed["sections"]  # only the requested analyses run


def test_demo_recovers_the_simulated_couplings(demo_run):
    out, _ = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    couplings = metrics["sections"]["couplings"]["values"]
    # The simulation's forward-sequence couplings are strong; even 48 s at 12 cells recovers them.
    assert couplings["J_true_correlation"] > 0.5
    ll = metrics["sections"]["likelihood"]["values"]
    assert ll["ll_test"] > ll["ll_null_test"]
    # The report's own kernel agrees with the model's log_likelihood on the same bins.
    assert ll["ll_test_recomputed"] == pytest.approx(ll["ll_test"], abs=1e-6)


def test_demo_model_file_loads_and_matches_metrics(demo_run):
    out, _ = demo_run
    model = sf.KineticIsing.load(out / "model.npz")
    J = np.load(out / "results" / "couplings.npz")["J"]
    np.testing.assert_allclose(model.J_, J)


def test_spatial_section_runs_on_simulated_place_cells(demo_run):
    out, _ = demo_run
    entry = json.loads((out / "metrics.json").read_text())["sections"]["spatial"]
    assert entry["status"] == "ok", entry["reason"]
    assert entry["values"]["n_informative_p01"] >= 6  # 90% of cells have a field in the simulation


def test_report_rebuilds_from_run_folder(demo_run):
    out, _ = demo_run
    before = (out / "report.html").read_text()
    (out / "report.html").unlink()
    for png in (out / "figures").glob("*.png"):
        png.unlink()
    result = invoke("report", out)
    assert result.exit_code == 0, result.output
    after = (out / "report.html").read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", before)
    assert headings == re.findall(r"<h2>(.*?)</h2>", after)
    assert after.count("data:image/png;base64,") == before.count("data:image/png;base64,")
    assert not [p for p in out.iterdir() if p.name.startswith(".report-")]


def test_report_rebuild_recovers_from_a_killed_rebuild(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "killed"
    shutil.copytree(out, copy)
    # A rebuild killed between its two renames left the old figures inside its staging folder.
    stale = copy / ".report-killed"
    stale.mkdir()
    os.rename(copy / "figures", stale / "old-figures")
    result = invoke("report", copy)
    assert result.exit_code == 0, result.output
    assert not [p for p in copy.iterdir() if p.name.startswith(".report-")]
    assert sorted(p.name for p in (copy / "figures").iterdir()) == sorted(p.name for p in (out / "figures").iterdir())


def test_rerun_replaces_old_run_and_config_json_reruns(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "rerun"
    shutil.copytree(out, copy)
    (copy / "figures" / "stale.png").write_bytes(b"old")
    # config.json reruns the same analysis; into an existing run folder it replaces the old run whole.
    result = invoke("demo", "--out", copy, "--config", out / "config.json", "--analyses", "spatial", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"report: {copy / 'report.html'}"
    assert not (copy / "figures" / "stale.png").exists()
    first = json.loads((out / "metrics.json").read_text())["sections"]
    second = json.loads((copy / "metrics.json").read_text())["sections"]
    assert first["likelihood"]["values"] == second["likelihood"]["values"]  # seeded throughout
    assert first["spatial"]["values"] == second["spatial"]["values"]
    assert "exploding" not in second  # the failing section was registered only for the first run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rerun"]


def test_failed_run_leaves_previous_run_untouched(demo_run, tmp_path, monkeypatch):
    out, _ = demo_run
    target = tmp_path / "run"
    shutil.copytree(out, target)
    stamp = (target / "metrics.json").read_text()

    def broken_fit(self, raster):
        raise sf.RasterError("simulated failure in the middle of a run")

    monkeypatch.setattr(sf.KineticIsing, "fit", broken_fit)
    result = invoke("demo", "--out", target, "--config", out / "config.json", "--analyses", "spatial", "--quiet")
    assert result.exit_code == 1
    assert "simulated failure" in result.output
    assert (target / "metrics.json").read_text() == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_refuses_to_replace_a_folder_that_is_not_a_run(tiny_config, tmp_path):
    precious = tmp_path / "mydata"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    result = invoke("demo", "--out", precious, "--config", tiny_config, "--quiet")
    assert result.exit_code == 1
    assert "not a spikefield run" in result.output and "Hint:" in result.output
    assert (precious / "notes.txt").read_text() == "keep me"


# ---------------------------------------------------------------------- the page in a real browser
# Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skips with a reason when it
# is absent, except under ``CI=true`` where it must run.
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars"]

# Marks the page once every <img> has decoded, so --dump-dom shows whether the figures loaded.
_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.documentElement.setAttribute('data-images-total', imgs.length);
  document.documentElement.setAttribute('data-images-decoded', ok);
});
</script></body>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    reason = "headless Chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_chromium(), *_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=180, check=False)


def test_report_screenshot_is_not_blank(demo_run, tmp_path):
    report_page = demo_run[0] / "report.html"
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    done = _run([f"--screenshot={shot}", "--window-size=1280,2400", report_page.as_uri()], tmp_path)
    assert shot.is_file(), done.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    # A blank or failed page is one flat colour; the report has a dark header, text and figures.
    assert pixels.std() > 0.1
    non_background = np.mean(np.abs(pixels - np.median(pixels.reshape(-1, 3), axis=0)).sum(axis=-1) > 0.1)
    assert non_background > 0.1


def test_report_dom_has_headings_and_decoded_figures(demo_run, tmp_path):
    report_page = demo_run[0] / "report.html"
    probe = tmp_path / "probe.html"
    probe.write_text(report_page.read_text().replace("</body>", _PROBE))
    done = _run(["--dump-dom", "--virtual-time-budget=5000", probe.as_uri()], tmp_path)
    dom = done.stdout
    assert "<h1>spikefield run report</h1>" in dom, done.stderr[-2000:]
    headings = re.findall(r"<h2>(.*?)</h2>", dom)
    for expected in ("Recording summary", "Raster snippet", "Firing-rate distribution", "Fitted couplings",
                     "Held-out log-likelihood", "Predicted vs observed correlations"):
        assert expected in headings
    total = int(re.search(r'data-images-total="(\d+)"', dom).group(1))
    decoded = int(re.search(r'data-images-decoded="(\d+)"', dom).group(1))
    assert total >= 6 and decoded == total
    assert dom.count("<figcaption>") == total


# ---------------------------------------------------------------------- errors at the CLI
@pytest.mark.parametrize(("args", "message"), [
    (["info", "/no/such/recording"], r"no such file or folder"),
    (["fit", "/no/such/recording", "--out", "{tmp}/r"], r"no such file or folder"),
    (["demo", "--out", "{tmp}/r", "--config", "{tmp}/missing.toml"], r"config file .*missing.toml: no such file"),
    (["report", "{tmp}"], r"not a complete spikefield run"),
    (["demo", "--out", "{tmp}/r", "--config", "{tmp}/bad.toml"], r"unknown key 'bin_sise'\. Did you mean 'bin_size'\?"),
    (["demo", "--out", "{tmp}/r", "--device", "tpu"], r"device must be 'auto', 'cpu' or 'cuda"),
    (["fit", "--out", "{tmp}/r"], r"no recording given"),
    # `data` in a demo's --config is the user's recording, never silently replaced by the simulation.
    (["demo", "--out", "{tmp}/r", "--config", "{tmp}/data.toml"], r"no such file or folder"),
])
def test_errors_are_one_line_with_hint(args, message, tmp_path):
    (tmp_path / "bad.toml").write_text("bin_sise = 0.02\n")
    (tmp_path / "data.toml").write_text('data = "/no/such/recording"\n')
    result = invoke(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and re.search(message, errors[0]), result.output
    assert lines[-1].startswith("Hint: ")
    assert "Traceback" not in result.output


def test_cuda_request_without_gpu_fails_before_reading(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path needs a CPU-only machine")
    result = invoke("demo", "--out", tmp_path / "r", "--device", "cuda")
    assert result.exit_code == 1
    assert "CUDA is not available" in result.output and "--device cpu" in result.output


def test_debug_shows_the_traceback():
    result = invoke("--debug", "info", "/no/such/recording")
    assert result.exit_code != 0
    assert isinstance(result.exception, ReaderError)


def test_debug_flag_does_not_leak_between_invocations():
    invoke("--debug", "info", "/no/such/recording")
    result = invoke("info", "/no/such/recording")
    assert result.exit_code == 1 and result.output.startswith("Error: ")


# ---------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_info_on_real_linear_track(hc_linear_track):
    result = invoke("info", hc_linear_track, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    # Figures from the data README (computed independently of spikefield).
    assert info["format"] == "matclust"
    assert info["n_units"] == 31
    assert info["n_spikes"] == 28_829
    assert sorted(u["n_spikes"] for u in info["units"])[:2] == [41, 44]
    assert info["behaviour"]["position"]["unit"] == "px"
    assert info["behaviour"]["position"]["valid_fraction"] == pytest.approx(57_582 / 118_965, abs=1e-3)
    text = invoke("info", hc_linear_track)
    assert text.exit_code == 0 and "units: 31" in text.stdout


@pytest.mark.realdata
def test_fit_on_real_linear_track(hc_linear_track, tmp_path):
    config = tmp_path / "hc.toml"
    config.write_text('epoch = "tracked"\nmin_rate = 0.1\nanalyses = []\nn_sample_bins = 5000\n')
    out = tmp_path / "hc"
    result = invoke("fit", hc_linear_track, "--out", out, "--config", config, "--bin-size", "0.02", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["data"]["bin_size_s"] == 0.02 and metrics["data"]["epoch"] == "tracked"
    assert 10 <= metrics["data"]["n_units"] < 31  # min_rate drops the sparsest units
    for name in CORE:
        assert metrics["sections"][name]["status"] == "ok", (name, metrics["sections"][name]["reason"])
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["bin_size"] == 0.02 and saved["min_rate"] == 0.1 and saved["data"] == str(hc_linear_track)
    # Units are ordered by an estimated place-field peak, since the recording has position.
    assert metrics["sections"]["couplings"]["values"]["order_by"].startswith("place-field peak")


def test_summary_line_survives_null_metrics(tmp_path, capsys):
    # metrics.json stores NaN as null; the printed summary must say so, not crash with a TypeError.
    from spikefield.cli import _print_result
    from spikefield.runs import RunResult

    metrics = {"sections": {"likelihood": {"status": "ok", "values": {"ll_test": None, "ll_null_test": -0.2,
                                                                       "ll_gain_test": None}}},
               "data": {"n_units": 3, "n_train_bins": 100, "bin_size_s": 0.01},
               "model": {"name": "kinetic_ising", "fit_seconds": 0.1, "converged": False, "n_iter": 5}}
    _print_result(RunResult(tmp_path, metrics), quiet=False, as_json=False, elapsed=1.0)
    assert "held-out log-likelihood n/a vs independent -0.20000 nats/bin/unit (gain n/a)" in capsys.readouterr().out
