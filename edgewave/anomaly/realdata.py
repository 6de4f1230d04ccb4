"""A real non-speech signal to try the detector on: PPG recordings shipped with the heartpy package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from edgewave.errors import UserError


def _heartpy_data_dir() -> Path:
    # find_spec locates the package without running its __init__, which imports pkg_resources
    # and fails on a setuptools that no longer ships it.
    spec = importlib.util.find_spec("heartpy")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the heartpy package is not installed; pip install heartpy to get its PPG recordings")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _read_columns(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    header = [name.strip() for name in lines[0].split(",")]
    return header, [line.split(",") for line in lines[1:]]


def _times_s(header: list[str], rows: list[list[str]], path: Path) -> np.ndarray:
    if "timer" in header:        # milliseconds since the start (data2.csv)
        column = header.index("timer")
        return np.array([float(row[column]) for row in rows]) / 1000.0
    if "datetime" in header:     # wall-clock timestamps (data3.csv)
        column = header.index("datetime")
        stamps = np.array([row[column].strip() for row in rows], dtype="datetime64[us]")
        return (stamps - stamps[0]).astype(np.float64) / 1e6
    raise UserError(f"{path} has no timer or datetime column to take the sample rate from; "
                    "use data2.csv or data3.csv")


def heartpy_ppg(name: str = "data3.csv") -> tuple[np.ndarray, float]:
    """Samples (float64) and sample rate (Hz) of one of heartpy's PPG recordings."""
    path = _heartpy_data_dir() / name
    if not path.is_file():
        raise UserError(f"heartpy has no recording {name} in {path.parent}; use data2.csv or data3.csv")
    header, rows = _read_columns(path)
    if "hr" not in header:
        raise UserError(f"{path} has no header with an hr column and a time column; use data2.csv or data3.csv")
    samples = np.array([float(row[header.index("hr")]) for row in rows])
    times = _times_s(header, rows, path)
    # The timestamps are quantised to the logging PC's ~15.6 ms clock tick (many repeat), so the
    # rate comes from the whole span, not from the median step between samples.
    rate = (len(times) - 1) / (times[-1] - times[0])
    return samples, float(rate)
