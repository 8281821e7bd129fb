"""NEWS2, the Royal College of Physicians' National Early Warning Score 2 (2017, chart 1 and
chart 2's SpO2 scales): respiration rate, SpO2 on scale 1 or 2, air or oxygen, systolic blood
pressure, pulse, consciousness (ACVPU) and temperature.

The bedside devices measure five of the seven; consciousness, supplemental oxygen and the SpO2
scale come from the device payload when it sends them, else from the patient's setting clinical
operations keep (news2_inputs.py), else they are assumed: alert, on air, scale 1. An assumed
input can under-warn (a confused patient on oxygen scores 5 more than here), so every alert names
the inputs it used and where each came from.

Each value is first read to the chart's precision, halves up (whole numbers; temperature to one
decimal: 90.4 mmHg is 90, 35.05 C is 35.1), then scores in the band whose upper edge it does not
exceed. A measured parameter a reading lacks scores nothing and the reading is marked incomplete.

SpO2 scale 2 (for a patient with hypercapnic respiratory failure, as a clinician decides): 83 or
under 3, 84-85 2, 86-87 1, 88-92 0, and 93 or over 0 on air but 1 (93-94), 2 (95-96) or 3 (97 or
over) on oxygen, where a saturation above the target range is itself a risk.

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
# SpO2 scale 2 (chart 1's second SpO2 row): on air nothing above 87 scores, on oxygen above 92 does
SCALE_2_ON_AIR = ((83, 85, 87), (3, 2, 1, 0))
SCALE_2_ON_OXYGEN = ((83, 85, 87, 92, 94, 96), (3, 2, 1, 0, 1, 2, 3))
PARAMETERS = tuple(BANDS)  # what the devices measure
ON_OXYGEN_SCORE = 2  # "Air or oxygen?": oxygen 2, air 0
NOT_ALERT_SCORE = 3  # consciousness: alert 0; new confusion, voice, pain or unresponsive 3
# the inputs a device may not send, each a part of the score like the measured ones
INPUTS = ("consciousness", "supplemental_oxygen")
# the chart's precision: values are read to this many decimals (halves up) before scoring
DECIMALS = {"temperature_c": 1}

NO_ALERT, WARNING, CRITICAL = 0, 1, 2
LEVEL_NAMES = {NO_ALERT: "none", WARNING: "warning", CRITICAL: "critical"}
CRITICAL_SCORE = 7
WARNING_SCORE = 5
RED_PARAMETER = 3  # a single parameter scoring this is a warning however low the aggregate


@dataclass(frozen=True)
class Scores:
    """NEWS2 of many readings at once: each part (the measured parameters, -1 where missing, and
    the inputs), the total and the alert level (NO_ALERT, WARNING or CRITICAL)."""

    parts: dict[str, np.ndarray]
    total: np.ndarray
    level: np.ndarray
    complete: np.ndarray


def _rounded(parameter: str, values: np.ndarray) -> np.ndarray:
    scale = 10.0 ** DECIMALS.get(parameter, 0)
    # halves up, and a hair over so that 35.05 (stored as 35.04999...) reads as 35.1
    return np.floor(np.asarray(values, dtype=np.float64) * scale + 0.5 + 1e-9) / scale


def _banded(values: np.ndarray, bands: tuple[tuple[float, ...], tuple[int, ...]]) -> np.ndarray:
    edges, scores = bands
    band = np.digitize(values, edges, right=True)  # edges[i-1] < value <= edges[i]
    return np.where(np.isnan(values), np.int8(-1), np.asarray(scores, dtype=np.int8)[band])


def part_scores(
    parameter: str,
    values: np.ndarray,
    on_oxygen: np.ndarray | None = None,
    scale_2: np.ndarray | None = None,
) -> np.ndarray:
    """The chart's score of each value of `parameter`; -1 where the value is missing. SpO2 is
    read on scale 2 where `scale_2` holds, its bands above 92 depending on `on_oxygen`."""
    values = _rounded(parameter, values)
    scored = _banded(values, BANDS[parameter])
    if parameter != "oxygen_saturation_pct" or scale_2 is None or not scale_2.any():
        return scored
    oxygen = np.zeros(len(values), dtype=bool) if on_oxygen is None else on_oxygen
    scale_2_scores = np.where(
        oxygen, _banded(values, SCALE_2_ON_OXYGEN), _banded(values, SCALE_2_ON_AIR)
    )
    return np.where(scale_2, scale_2_scores, scored).astype(np.int8)


def score(
    readings: dict[str, np.ndarray],
    on_oxygen: np.ndarray | None = None,
    scale_2: np.ndarray | None = None,
    alert: np.ndarray | None = None,
) -> Scores:
    """NEWS2 of each reading; `readings` holds an array per measured parameter (NaN where
    missing); `on_oxygen`, `scale_2` and `alert` (ACVPU's A) an array each of booleans, or None
    for on air, scale 1 and alert throughout."""
    count = len(readings[PARAMETERS[0]])
    measured = {
        parameter: part_scores(parameter, readings[parameter], on_oxygen, scale_2)
        for parameter in PARAMETERS
    }
    inputs = {
        "consciousness": np.where(alert, 0, NOT_ALERT_SCORE).astype(np.int8)
        if alert is not None
        else np.zeros(count, dtype=np.int8),
        "supplemental_oxygen": np.where(on_oxygen, ON_OXYGEN_SCORE, 0).astype(np.int8)
        if on_oxygen is not None
        else np.zeros(count, dtype=np.int8),
    }
    stacked = np.stack([*measured.values(), *inputs.values()])
    total = np.where(stacked < 0, 0, stacked).sum(axis=0).astype(np.int16)
    red = (stacked == RED_PARAMETER).any(axis=0)
    level = np.where(
        total >= CRITICAL_SCORE,
        CRITICAL,
        np.where((total >= WARNING_SCORE) | red, WARNING, NO_ALERT),
    ).astype(np.int8)
    complete = (np.stack(list(measured.values())) >= 0).all(axis=0)
    return Scores({**measured, **inputs}, total, level, complete)


def score_one(
    on_oxygen: bool = False, scale_2: bool = False, alert: bool = True, **values: float | None
) -> tuple[int, int, dict[str, int]]:
    """(total, level, parts) of a single reading: for tests and the docs' examples."""
    arrays = {
        parameter: np.array([np.nan if values.get(parameter) is None else values[parameter]])
        for parameter in PARAMETERS
    }
    scores = score(arrays, np.array([on_oxygen]), np.array([scale_2]), np.array([alert]))
    parts = {parameter: int(part[0]) for parameter, part in scores.parts.items()}
    return int(scores.total[0]), int(scores.level[0]), parts
