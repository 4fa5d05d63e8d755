"""Reader errors across formats: missing, truncated and foreign files give one-line ReaderErrors."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import spikefield as sf
from spikefield.errors import ReaderError, SpikefieldError
from spikefield.io import FORMATS
from spikefield.io.matclust import read_matclust
from spikefield.io.moser import read_moser
from spikefield.io.nwb import read_nwb
from spikefield.io.phy import read_phy


def _one_line(exc: pytest.ExceptionInfo) -> None:
    assert isinstance(exc.value, SpikefieldError) and "\n" not in str(exc.value)


@pytest.mark.parametrize(("reader", "name", "message"), [
    (read_nwb, "missing.nwb", r"missing\.nwb: no such file; expected an NWB"),
    (read_phy, "missing_folder", r"missing_folder: no such folder; expected a phy/Kilosort output folder"),
    (read_matclust, "missing", r"missing: no such file or folder; expected a MatClust folder"),
    (read_moser, "missing", r"missing: no such file or folder; expected a Moser-lab session folder"),
    (sf.read, "missing.nwb", r"missing\.nwb: no such file or folder"),
])
def test_missing_paths(tmp_path: Path, reader, name: str, message: str) -> None:
    with pytest.raises(ReaderError, match=message) as exc:
        reader(tmp_path / name)
    _one_line(exc)


def test_unknown_format_and_misspelled_format(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ReaderError, match="not a recognised recording format"):
        sf.read(tmp_path)
    with pytest.raises(ReaderError, match=r"format='phi' is not supported.*Did you mean 'phy'\?"):
        sf.read(tmp_path, format="phi")


@pytest.mark.parametrize("content", [b"", b"hello world\n", b"\x89HDF\r\n\x1a\n" + b"\0" * 10, b"MATLAB 5.0"])
@pytest.mark.parametrize("name", ["x.nwb", "x.mat", "spikes.mat", "A_T1C1.mat", "A_pos.mat", "x.npy", "x"])
def test_sniffers_never_raise_on_foreign_files(tmp_path: Path, content: bytes, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    for fmt in FORMATS.values():
        for target in (path, tmp_path, tmp_path / "absent"):
            assert isinstance(fmt.load(fmt.sniffer)(target), bool)


def _truncate(source: Path, target: Path, fraction: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


@pytest.mark.realdata
@pytest.mark.parametrize("fraction", [0.5, 0.02])
def test_truncated_real_nwb(nwb_psb: Path, tmp_path: Path, fraction: float) -> None:
    path = _truncate(nwb_psb, tmp_path / "A8604-211122.nwb", fraction)
    with pytest.raises(ReaderError, match=r"A8604-211122\.nwb: cannot be opened as NWB .*copy the file again") as exc:
        sf.read(path)
    _one_line(exc)


@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore:.*cluster struct:UserWarning")
def test_truncated_real_matclust_files(hc_linear_track: Path, tmp_path: Path) -> None:
    _truncate(hc_linear_track / "spikes.mat", tmp_path / "spikes.mat")
    shutil.copy(hc_linear_track / "trajectory.videoPositionTracking", tmp_path)
    with pytest.raises(ReaderError, match=r"spikes\.mat: cannot be read as a MATLAB 5/7 MAT-file .*truncated") as exc:
        sf.read(tmp_path)
    _one_line(exc)
    shutil.copy(hc_linear_track / "spikes.mat", tmp_path / "spikes.mat")
    _truncate(hc_linear_track / "trajectory.videoPositionTracking", tmp_path / "trajectory.videoPositionTracking",
              0.7)
    with pytest.raises(ReaderError, match=r"trajectory\.videoPositionTracking: .* not a multiple of the 12-byte"):
        read_matclust(tmp_path)


@pytest.mark.realdata
@pytest.mark.parametrize("victim", ["BEN_T01C1.mat", "BEN_pos.mat"])
def test_truncated_real_moser_files(mec_grid_cells: Path, tmp_path: Path, victim: str) -> None:
    for path in mec_grid_cells.glob("BEN_*.mat"):
        shutil.copy(path, tmp_path)
    _truncate(mec_grid_cells / victim, tmp_path / victim, 0.3)
    with pytest.raises(ReaderError, match=rf"{victim.replace('.', chr(92) + '.')}: cannot be read as a MATLAB") as exc:
        sf.read(tmp_path)
    _one_line(exc)


@pytest.mark.parametrize(("files", "reader", "message"), [
    ({"spikes.mat": {"spike": np.ones(2)}}, read_matclust, r"spikes\.mat: no variable 'spikes' \(found \['spike'\]\)"),
    ({"A_T1C1.mat": {"times": np.ones(2)}}, read_moser, r"A_T1C1\.mat: no variable 'cellTS' or 'ts'"),
    ({"A_T1C1.mat": {"cellTS": np.ones((2, 2))}}, read_moser,
     r"variable 'cellTS' has shape \(2, 2\); expected a vector"),
    ({"A_T1C1.mat": {"cellTS": [["a"]]}}, read_moser, r"variable 'cellTS' holds <U1 values; expected numbers"),
])
def test_mat_without_expected_variable(tmp_path: Path, files: dict, reader, message: str) -> None:
    for name, variables in files.items():
        scipy.io.savemat(tmp_path / name, variables)
    with pytest.raises(ReaderError, match=message) as exc:
        reader(tmp_path)
    _one_line(exc)


def test_mat_file_that_is_not_a_mat_file(tmp_path: Path) -> None:
    (tmp_path / "spikes.mat").write_text("this is text, not MATLAB")
    with pytest.raises(ReaderError, match=r"spikes\.mat: cannot be read as a MATLAB 5/7 MAT-file \(24 bytes"):
        read_matclust(tmp_path)


@pytest.mark.realdata
def test_reading_never_modifies_input(hc_linear_track: Path, mec_grid_cells: Path, nwb_psb: Path,
                                      tmp_path: Path) -> None:
    folders = {"hc": hc_linear_track, "mec": mec_grid_cells}
    copies = {}
    for key, folder in folders.items():
        copies[key] = tmp_path / key
        shutil.copytree(folder, copies[key])
    shutil.copy(nwb_psb, tmp_path / "file.nwb")

    def digest() -> dict[str, str]:
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tmp_path.rglob("*")) if p.is_file()}

    before = digest()
    with pytest.warns(UserWarning):
        sf.read(copies["hc"])
    sf.read(copies["mec"])
    sf.read(tmp_path / "file.nwb")
    assert digest() == before
