"""Each vital of a reading classified on its own: valid, physiologically extreme, or an artefact,
by the limits of seeds/vital_sign_limits.csv (the warehouse's staging reads the same file, as a
dbt seed). Each limit's row cites where it comes from.

- An **artefact** is no measurement: below `artefact_below` or above `artefact_above` (negative,
  beyond what any device measures; the sentinels devices send for "no value", -1, 999, 32767,
  65535, all lie outside), or, of two pressures both within the device range, a diastolic at or
  above the systolic (both are then an artefact). It is kept as null beside the reading, named and counted; the reading's other vitals
  are scored.
- An **extreme** value is a measurement that matters most: below `extreme_below` or above
  `extreme_above` (a heart rate of 0, an SpO2 of 25 %); a limit equal to the artefact limit on
  its side means none. NEWS2 scores it, and it raises an
  `extreme` alert at once: verify the patient now (alert_rules.py).
- Anything else is valid.

A reading lands whole whatever its vitals hold (ingestion/rules/vitals.yml checks its identity
and time only); one bad vital never throws the others away.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import settings

LIMITS_FILE = settings.PROJECT_ROOT / "seeds" / "vital_sign_limits.csv"


@dataclass(frozen=True)
class Limits:
    artefact_below: float
    artefact_above: float
    extreme_below: float
    extreme_above: float


def load_limits(path: Path = LIMITS_FILE) -> dict[str, Limits]:
    """The limits of each vital, by the processor's name of it (heart_rate_bpm...)."""
    limits = {}
    with path.open(newline="") as file:
        for position, row in enumerate(csv.DictReader(file), start=2):
            try:
                limits[row["vital"]] = Limits(
                    *(float(row[name]) for name in Limits.__dataclass_fields__)
                )
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(
                    f"{path}: line {position}: each limit must be a number"
                    " (an extreme limit equal to the artefact one for none)"
                ) from error
    return limits


@dataclass(frozen=True)
class Classified:
    """Many readings' vitals classified: the values with artefacts set to NaN (what is stored
    and scored), and per vital whether each reading's value was an artefact, or extreme."""

    values: dict[str, np.ndarray]
    artefact: dict[str, np.ndarray]
    extreme: dict[str, np.ndarray]

    def artefact_names(self) -> list[tuple[str, ...]]:
        return _names(self.artefact)

    def extreme_names(self) -> list[tuple[str, ...]]:
        return _names(self.extreme)


def classify(values: dict[str, np.ndarray], limits: dict[str, Limits]) -> Classified:
    """Classify each vital in `values` (an array per vital, NaN where the reading lacks it)."""
    artefact, extreme = {}, {}
    for vital, raw in values.items():
        raw = np.asarray(raw, dtype=np.float64)
        limit = limits[vital]
        present = ~np.isnan(raw)
        artefact[vital] = present & ((raw < limit.artefact_below) | (raw > limit.artefact_above))
        extreme[vital] = (
            present & ~artefact[vital] & ((raw < limit.extreme_below) | (raw > limit.extreme_above))
        )
    if {"systolic_mmhg", "diastolic_mmhg"} <= values.keys():
        # the systolic pressure is the peak: a diastolic at or above it is no pressure measured.
        # Only between two measurements: a diastolic sentinel (65535) is its own artefact and
        # takes no valid systolic (a hypotensive 85, an extreme 40) with it
        systolic = np.asarray(values["systolic_mmhg"], dtype=np.float64)
        diastolic = np.asarray(values["diastolic_mmhg"], dtype=np.float64)
        inverted = (
            (diastolic >= systolic) & ~artefact["systolic_mmhg"] & ~artefact["diastolic_mmhg"]
        )
        for vital in ("systolic_mmhg", "diastolic_mmhg"):
            artefact[vital] = artefact[vital] | inverted
            extreme[vital] = extreme[vital] & ~inverted
    cleaned = {
        vital: np.where(artefact[vital], np.nan, np.asarray(raw, dtype=np.float64))
        for vital, raw in values.items()
    }
    return Classified(cleaned, artefact, extreme)


def _names(flags: dict[str, np.ndarray]) -> list[tuple[str, ...]]:
    """Per reading, the vitals flagged, in the order of `flags` (one shared empty tuple for the
    many readings with none: ten thousand readings a second)."""
    if not flags:
        return []
    vitals = list(flags)
    stacked = np.stack([flags[vital] for vital in vitals], axis=1)
    names: list[tuple[str, ...]] = [()] * len(stacked)
    for row in np.flatnonzero(stacked.any(axis=1)).tolist():
        names[row] = tuple(vitals[column] for column in np.flatnonzero(stacked[row]).tolist())
    return names
