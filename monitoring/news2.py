"""NEWS2, the Royal College of Physicians' National Early Warning Score 2 (2017), from what the
bedside devices send: respiration rate, SpO2 (scale 1), systolic blood pressure, pulse and
temperature.

Devices report neither consciousness nor supplemental oxygen: every reading is scored as alert
(0) and on room air (0). A patient on oxygen or newly confused scores higher on the chart than
here, so these scores can under-warn; SpO2 is read on scale 1 always, which over-warns for a
patient whose target is scale 2's (88-92%). docs/monitoring.md says so too.

Each value is first read to the chart's precision, halves up (whole numbers; temperature to one
decimal: 90.4 mmHg is 90, 35.05 C is 35.1), then scores in the band whose upper edge it does not
exceed. A parameter a reading lacks scores nothing and the reading is marked incomplete.

Clinical response (the chart's thresholds): an aggregate of 7 or more is critical; 5-6, or 3 in
any single parameter, a warning; anything else no alert.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# parameter -> (upper edges of the bands, the score of each band and of the one above the last)
BANDS: dict[str, tuple[tuple[float, ...], tuple[int, ...]]] = {
    "respiratory_rate_per_min": ((8, 11, 20, 24), (3, 1, 0, 2, 3)),
    "oxygen_saturation_pct": ((91, 93, 95), (3, 2, 1, 0)),
    "systolic_mmhg": ((90, 100, 110, 219), (3, 2, 1, 0, 3)),
    "heart_rate_bpm": ((40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3)),
    "temperature_c": ((35.0, 36.0, 38.0, 39.0), (3, 1, 0, 1, 2)),
}
PARAMETERS = tuple(BANDS)
# the chart's precision: values are read to this many decimals (halves up) before scoring
DECIMALS = {"temperature_c": 1}

NO_ALERT, WARNING, CRITICAL = 0, 1, 2
LEVEL_NAMES = {NO_ALERT: "none", WARNING: "warning", CRITICAL: "critical"}
CRITICAL_SCORE = 7
WARNING_SCORE = 5
RED_PARAMETER = 3  # a single parameter scoring this is a warning however low the aggregate


@dataclass(frozen=True)
class Scores:
    """NEWS2 of many readings at once: each parameter's part (-1 where missing), the total and
    the alert level (NO_ALERT, WARNING or CRITICAL)."""

    parts: dict[str, np.ndarray]
    total: np.ndarray
    level: np.ndarray
    complete: np.ndarray


def part_scores(parameter: str, values: np.ndarray) -> np.ndarray:
    """The chart's score of each value of `parameter`; -1 where the value is missing."""
    edges, scores = BANDS[parameter]
    scale = 10.0 ** DECIMALS.get(parameter, 0)
    # halves up, and a hair over so that 35.05 (stored as 35.04999...) reads as 35.1
    values = np.floor(np.asarray(values, dtype=np.float64) * scale + 0.5 + 1e-9) / scale
    band = np.digitize(values, edges, right=True)  # edges[i-1] < value <= edges[i]
    scored = np.asarray(scores, dtype=np.int8)[band]
    return np.where(np.isnan(values), np.int8(-1), scored)


def score(readings: dict[str, np.ndarray]) -> Scores:
    """NEWS2 of each reading; `readings` holds an array per parameter (NaN where missing)."""
    parts = {parameter: part_scores(parameter, readings[parameter]) for parameter in PARAMETERS}
    stacked = np.stack(list(parts.values()))
    total = np.where(stacked < 0, 0, stacked).sum(axis=0).astype(np.int16)
    red = (stacked == RED_PARAMETER).any(axis=0)
    level = np.where(
        total >= CRITICAL_SCORE,
        CRITICAL,
        np.where((total >= WARNING_SCORE) | red, WARNING, NO_ALERT),
    ).astype(np.int8)
    return Scores(parts, total, level, (stacked >= 0).all(axis=0))


def score_one(**values: float | None) -> tuple[int, int, dict[str, int]]:
    """(total, level, parts) of a single reading: for tests and the docs' examples."""
    arrays = {
        parameter: np.array([np.nan if values.get(parameter) is None else values[parameter]])
        for parameter in PARAMETERS
    }
    scores = score(arrays)
    parts = {parameter: int(part[0]) for parameter, part in scores.parts.items()}
    return int(scores.total[0]), int(scores.level[0]), parts
