"""phy / Kilosort folder reader on folders written by the tests, with the quirks of real ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import spikefield as sf
from spikefield.errors import ReaderError
from spikefield.io.phy import read_params, read_phy

RATE = 30_000.0
PARAMS = ("import os\ndat_path = 'raw.bin'\nn_channels_dat = 4\ndtype = 'int16'\noffset = 0\n"
          "sample_rate = 30000.\nhp_filtered = False\nbad = os.path.join('a', 'b')\n")


def _folder(tmp_path: Path, rng: np.random.Generator, *, time_dtype=np.uint64, cluster_dtype=np.int32,
            column: bool = True, labels: bool = True, params: str | None = PARAMS) -> tuple[Path, dict]:
    """A phy folder: clusters 0, 3, 7 with spikes; 9 listed in the tsv files but spike-less."""
    folder = tmp_path / "ks"
    folder.mkdir()
    truth = {cid: np.sort(rng.choice(30_000 * 60, size=n, replace=False)) for cid, n in ((0, 50), (3, 7), (7, 120))}
    samples = np.concatenate(list(truth.values()))
    clusters = np.concatenate([np.full(v.size, k) for k, v in truth.items()])
    order = np.argsort(samples, kind="stable")  # Kilosort writes spikes time-ordered, clusters mixed
    times = samples[order].astype(time_dtype)
    np.save(folder / "spike_times.npy", times[:, None] if column else times)
    np.save(folder / "spike_clusters.npy", clusters[order].astype(cluster_dtype))
    if params is not None:
        (folder / "params.py").write_text(params)
    if labels:
        (folder / "cluster_group.tsv").write_text("cluster_id\tgroup\n0\tgood\n3\tmua\n7\tgood\n9\tnoise\n")
        (folder / "cluster_info.tsv").write_text(
            "cluster_id\tAmplitude\tContamPct\tKSLabel\tamp\tch\tdepth\tfr\tgroup\tn_spikes\tsh\n"
            "0\t1200.5\t3.1\tgood\t80.2\t12\t240.0\t0.83\tmua\t50\t0\n"
            "3\t900.0\t50.0\tmua\t40.1\t3\t60.0\t0.12\tmua\t7\t0\n"
            "7\t1500.0\t0.5\tgood\t95.0\t30\t600.0\t2.0\t\t120\t0\n"
            "9\t100.0\t99.0\tmua\t5.0\t31\t620.0\t0.0\tnoise\t0\t0\n")
    return folder, truth


@pytest.mark.parametrize("time_dtype", [np.uint64, np.int64, np.uint32, np.int32])
@pytest.mark.parametrize("cluster_dtype", [np.int32, np.uint32, np.int64])
@pytest.mark.parametrize("column", [True, False])
def test_dtypes_and_shapes(tmp_path: Path, rng, time_dtype, cluster_dtype, column) -> None:
    folder, truth = _folder(tmp_path, rng, time_dtype=time_dtype, cluster_dtype=cluster_dtype, column=column,
                            labels=False)
    rec = sf.read(folder)
    assert rec.unit_ids.tolist() == [0, 3, 7]
    for train, expected in zip(rec.spike_times, truth.values(), strict=True):
        np.testing.assert_array_equal(train, expected / RATE)


def test_labels_and_info_columns(tmp_path: Path, rng) -> None:
    folder, _ = _folder(tmp_path, rng)
    with pytest.warns(UserWarning, match=r"1 cluster\(s\) listed in the label files own no spikes: \[9\]"):
        rec = sf.read(folder)
    units = rec.units
    assert units.unit_id.tolist() == [0, 3, 7, 9]
    assert units.n_spikes.tolist() == [50, 7, 120, 0]
    # cluster_group.tsv (phy's manual labels) wins over cluster_info.tsv's group column.
    assert units.quality.tolist() == ["good", "mua", "good", "noise"]
    assert units.depth.tolist() == [240.0, 60.0, 600.0, 620.0] and units.ch.tolist() == [12, 3, 30, 31]
    assert units.amp.tolist() == [80.2, 40.1, 95.0, 5.0] and units.kslabel.tolist() == ["good", "mua", "good", "mua"]


def test_good_only_and_exclude_empty(tmp_path: Path, rng) -> None:
    folder, truth = _folder(tmp_path, rng)
    with pytest.warns(UserWarning):
        rec = read_phy(folder, good_only=True)
    assert rec.unit_ids.tolist() == [0, 7] and rec.units.n_spikes.tolist() == [50, 120]
    with pytest.warns(UserWarning, match="left out"):
        rec = read_phy(folder, include_empty=False)
    assert rec.unit_ids.tolist() == [0, 3, 7] and rec.n_spikes == sum(v.size for v in truth.values())


def test_missing_tsv_means_no_labels(tmp_path: Path, rng) -> None:
    folder, _ = _folder(tmp_path, rng, labels=False)
    rec = read_phy(folder)
    assert "quality" not in rec.units.columns
    with pytest.raises(ReaderError, match=r"good_only=True but there is no cluster_group\.tsv"):
        read_phy(folder, good_only=True)


def test_only_cluster_group_tsv(tmp_path: Path, rng) -> None:
    folder, _ = _folder(tmp_path, rng)
    (folder / "cluster_info.tsv").unlink()
    with pytest.warns(UserWarning):
        rec = read_phy(folder)
    assert rec.units.quality.tolist() == ["good", "mua", "good", "noise"] and "depth" not in rec.units.columns


def test_support_from_raw_file_and_params(tmp_path: Path, rng) -> None:
    folder, _ = _folder(tmp_path, rng, labels=False)
    # 4 channels of int16 for 70 s: the support runs to the end of the raw recording.
    (folder / "raw.bin").write_bytes(b"\0" * (70 * 30_000 * 4 * 2))
    rec = read_phy(folder)
    assert rec.support.tolist() == [[0.0, 70.0]]
    params = read_params(folder / "params.py")
    assert params["sample_rate"] == 30000.0 and params["n_channels_dat"] == 4 and "bad" not in params


def test_params_are_never_executed(tmp_path: Path, rng) -> None:
    marker = tmp_path / "executed"
    code = f"open({str(marker)!r}, 'w').write('x')\nsample_rate = 20000\n"
    folder, truth = _folder(tmp_path, rng, labels=False, params=code)
    rec = read_phy(folder)
    assert not marker.exists()
    np.testing.assert_array_equal(rec.spike_times[0], truth[0] / 20000)


def test_sample_rate_argument_and_templates_fallback(tmp_path: Path, rng) -> None:
    folder, truth = _folder(tmp_path, rng, labels=False, params=None)
    (folder / "spike_clusters.npy").rename(folder / "spike_templates.npy")
    rec = read_phy(folder, sample_rate=10_000)
    np.testing.assert_array_equal(rec.spike_times[2], truth[7] / 10_000)


def test_unsorted_spike_times_are_grouped_without_loss(tmp_path: Path, rng) -> None:
    folder, truth = _folder(tmp_path, rng, labels=False)
    times = np.load(folder / "spike_times.npy")
    clusters = np.load(folder / "spike_clusters.npy")
    perm = rng.permutation(len(clusters))
    np.save(folder / "spike_times.npy", times[perm])
    np.save(folder / "spike_clusters.npy", clusters[perm])
    rec = read_phy(folder)
    for train, expected in zip(rec.spike_times, truth.values(), strict=True):
        np.testing.assert_array_equal(train, expected / RATE)


@pytest.mark.parametrize(("case", "kwargs", "message"), [
    ("mismatch", {}, r"spike_times\.npy has 177 spikes but spike_clusters\.npy has 176 labels"),
    ("no_params", {}, r"there is no params\.py; pass sample_rate="),
    ("no_rate", {}, r"params\.py has no 'sample_rate'"),
    ("bad_params", {}, r"params\.py: is not valid Python"),
    ("ok", {"sample_rate": -5}, r"sample_rate is -5; expected a positive number"),
    ("truncated", {}, r"spike_times\.npy: cannot be read as a \.npy array"),
    ("matrix", {}, r"spike_times has shape \(177, 2\); expected \(n,\) or \(n, 1\)"),
    ("bad_tsv", {}, r"cluster_group\.tsv: header \['id_of_cluster', 'group'\] has no 'cluster_id' column"),
    ("float_clusters", {}, r"spike_clusters\.npy: spike clusters holds 2\.5 at index 3; expected whole numbers"),
])
def test_errors_table(tmp_path: Path, rng, case: str, kwargs: dict, message: str) -> None:
    folder, _ = _folder(tmp_path, rng, labels=False)
    if case == "mismatch":
        np.save(folder / "spike_clusters.npy", np.load(folder / "spike_clusters.npy")[:-1])
    elif case == "no_params":
        (folder / "params.py").unlink()
    elif case == "no_rate":
        (folder / "params.py").write_text("n_channels_dat = 4\n")
    elif case == "bad_params":
        (folder / "params.py").write_text("sample_rate = = 3\n")
    elif case == "truncated":
        data = (folder / "spike_times.npy").read_bytes()
        (folder / "spike_times.npy").write_bytes(data[: len(data) // 2])
    elif case == "matrix":
        np.save(folder / "spike_times.npy", np.zeros((177, 2), np.uint64))
    elif case == "float_clusters":  # used to be truncated to cluster 2 silently
        clusters = np.load(folder / "spike_clusters.npy").astype(np.float64)
        clusters[3] = 2.5
        np.save(folder / "spike_clusters.npy", clusters)
    elif case == "bad_tsv":
        (folder / "cluster_group.tsv").write_text("id_of_cluster\tgroup\n0\tgood\n")
    with pytest.raises(ReaderError, match=message):
        read_phy(folder, **kwargs)
