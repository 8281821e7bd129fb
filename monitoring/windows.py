"""Per-patient windows over the readings: z-scores against the patient's own recent past, and the
one-minute tumbling aggregates the sliding ones are made of.

A reading's z-score for a vital compares it with the same patient's readings from the same device
in the window before it ([t - window, t), event time), among those processed so far: (value -
mean) / sample standard deviation. Too few readings, or no spread, and there is no score. Each
device is its own stream: another device's clock or calibration does not move this one's scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VITALS = (
    "heart_rate_bpm",
    "systolic_mmhg",
    "diastolic_mmhg",
    "temperature_c",
    "oxygen_saturation_pct",
    "respiratory_rate_per_min",
)
US = 1_000_000
HUNDRED = 100  # vitals are summed exactly, in hundredths


def zscores(history: pd.DataFrame, batch: pd.DataFrame, config: dict) -> pd.DataFrame:
    """One z-score column per vital (`z_<vital>`, NaN where none) for each row of `batch`.

    `history` holds the patients' earlier processed readings (patient_key, device_id,
    measured_us, vitals);
    rows of `batch` see each other too, as readings of the same file do. Each window's count, sum
    and sum of squares come from cumulative sums (exact, in integer hundredths) over the readings
    sorted by patient and time, so a file costs a sort of its patients' recent readings, whatever
    the window's length.
    """
    window_us = int(config["window_seconds"] * US)
    columns = ["patient_key", "device_id", "measured_us", *VITALS]
    reach = batch["measured_us"].min() - window_us if len(batch) else 0
    relevant = history[
        history["patient_key"].isin(batch["patient_key"].unique())
        & (history["measured_us"] >= reach)
    ]
    both = pd.concat([relevant[columns], batch[columns]], ignore_index=True)
    # one code per (patient, device): each factorized alone, combined, made dense again
    patient_codes = pd.factorize(both["patient_key"])[0].astype(np.int64)
    device_codes = pd.factorize(both["device_id"])[0].astype(np.int64)
    combined = patient_codes * (device_codes.max(initial=0) + 1) + device_codes
    codes = np.unique(combined, return_inverse=True)[1].astype(np.int64).reshape(-1)
    times = both["measured_us"].to_numpy(dtype=np.int64)
    start = times.min() - window_us
    span = int(times.max() - start + 1)
    if codes.max(initial=0) >= 2**62 // span:
        raise OverflowError("readings too far apart in time for one file's windows")
    keys = codes * span + (times - start)
    order = np.argsort(keys, kind="stable")  # history before the batch at equal keys
    sorted_keys = keys[order]
    batch_keys = keys[len(relevant) :]
    low = np.searchsorted(sorted_keys, batch_keys - window_us, side="left")
    high = np.searchsorted(sorted_keys, batch_keys, side="left")  # [t - window, t)
    # exact sums: each value in hundredths as an integer, so a window of equal values has a
    # spread of exactly 0 however many readings came before it in the sums
    values = both[list(VITALS)].to_numpy(dtype=np.float64)
    out = {}
    for number, vital in enumerate(VITALS):
        column = values[order, number]
        valid = ~np.isnan(column)
        hundredths = np.where(valid, np.round(column * HUNDRED), 0).astype(np.int64)
        count = _window_sums(valid.astype(np.int64), low, high)
        total = _window_sums(hundredths, low, high)
        squares = _window_sums(hundredths * hundredths, low, high)
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = (count * squares - total * total).astype(np.float64)  # exact, >= 0
            std = np.sqrt(spread / (count * (count - 1))) / HUNDRED
            mean = total / count / HUNDRED
            z = (values[len(relevant) :, number] - mean) / std
        z[(count < config["min_readings"]) | ~(spread > 0)] = np.nan
        out[f"z_{vital}"] = z
    return pd.DataFrame(out, index=np.arange(len(batch)))


def _window_sums(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    cumulative = np.concatenate(([0], np.cumsum(values)))
    return cumulative[high] - cumulative[low]


def anomalous_vitals(z: pd.DataFrame, threshold: float) -> list[list[str]]:
    """The vitals each reading flags: |z| above `threshold`."""
    flags = np.abs(z[[f"z_{vital}" for vital in VITALS]].to_numpy()) > threshold
    flagged = [[] for _ in range(len(flags))]
    for row in np.flatnonzero(flags.any(axis=1)).tolist():
        flagged[row] = [VITALS[i] for i in np.flatnonzero(flags[row])]
    return flagged


def touched_minutes(batch: pd.DataFrame, tumbling_seconds: int) -> pd.DataFrame:
    """The (patient, window start) pairs a batch's readings fall in: the tumbling windows to
    recompute."""
    width = int(tumbling_seconds) * US
    starts = batch["measured_us"].to_numpy() // width * width
    return (
        pd.DataFrame({"patient_key": batch["patient_key"].to_numpy(), "window_start_us": starts})
        .drop_duplicates()
        .reset_index(drop=True)
    )
