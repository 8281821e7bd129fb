"""Per-patient windows over the readings: z-scores against the patient's own recent past, and the
one-minute tumbling aggregates the sliding ones are made of.

A reading's z-score for a vital compares it with the same patient's readings of the window before
it ([t - window, t), event time), among those processed so far; too few readings, or no spread,
and there is no score.
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


def zscores(history: pd.DataFrame, batch: pd.DataFrame, config: dict) -> pd.DataFrame:
    """One z-score column per vital (`z_<vital>`, NaN where none) for each row of `batch`.

    `history` holds the patient's earlier processed readings (patient_key, measured_us, vitals);
    rows of `batch` see each other too, as readings of the same file do.
    """
    window = f"{int(config['window_seconds'])}s"
    columns = ["patient_key", "measured_us", *VITALS]
    both = pd.concat([history[columns], batch[columns]], ignore_index=True)
    both[list(VITALS)] = both[list(VITALS)].astype("float64")
    both["_at"] = pd.to_datetime(both["measured_us"].astype("int64"), unit="us")
    both = both.sort_values(["patient_key", "_at"], kind="stable")
    # the rolling results come out grouped by patient, in time order: `both`'s sorted order
    rolling = both.groupby("patient_key", sort=True).rolling(window, on="_at", closed="left")
    original = both.index.to_numpy()  # each sorted row's place in history + batch
    out = pd.DataFrame(index=np.arange(len(batch)))
    for statistic in ("mean", "std", "count"):
        sorted_values = getattr(rolling[list(VITALS)], statistic)().to_numpy()
        values = np.empty_like(sorted_values)
        values[original] = sorted_values
        for number, vital in enumerate(VITALS):
            out[f"{vital}_{statistic}"] = values[len(history) :, number]
    for vital in VITALS:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (batch[vital].to_numpy(dtype="float64") - out[f"{vital}_mean"].to_numpy()) / out[
                f"{vital}_std"
            ].to_numpy()
        z[
            (out[f"{vital}_count"].to_numpy() < config["min_readings"])
            | ~(out[f"{vital}_std"].to_numpy() > 0)
        ] = np.nan
        out[f"z_{vital}"] = z
    return out[[f"z_{vital}" for vital in VITALS]]


def anomalous_vitals(z: pd.DataFrame, threshold: float) -> list[list[str]]:
    """The vitals each reading flags: |z| above `threshold`."""
    flags = np.abs(z[[f"z_{vital}" for vital in VITALS]].to_numpy()) > threshold
    return [[VITALS[i] for i in np.flatnonzero(row)] for row in flags]


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
