"""NEWS2 at the Royal College of Physicians' chart's band edges, parameter by parameter."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.news2 import CRITICAL, NO_ALERT, WARNING, part_scores, score_one

NORMAL = {
    "respiratory_rate_per_min": 16,
    "oxygen_saturation_pct": 98,
    "systolic_mmhg": 120,
    "heart_rate_bpm": 70,
    "temperature_c": 37.0,
}

# (value, score) on each side of every edge of the chart
EDGES = {
    "respiratory_rate_per_min": [
        (4, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (40, 3),
    ],
    "oxygen_saturation_pct": [
        (85, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0),
    ],
    "systolic_mmhg": [
        (70, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3),
    ],
    "heart_rate_bpm": [
        (30, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2),
        (130, 2), (131, 3), (180, 3),
    ],
    "temperature_c": [
        (34.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
        (39.1, 2), (41.0, 2),
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [(parameter, value, score) for parameter, edges in EDGES.items() for value, score in edges],
)
def test_each_parameter_scores_by_the_chart_band_it_falls_in(parameter, value, expected):
    assert part_scores(parameter, np.array([value]))[0] == expected
    total, _, parts = score_one(**{**NORMAL, parameter: value})
    assert parts[parameter] == expected
    assert total == expected  # every other parameter normal


def test_values_are_read_to_the_chart_s_precision_halves_up():
    temperatures = np.array([35.04, 35.05, 36.04, 36.05, 38.04, 38.05, 39.04, 39.05])
    assert part_scores("temperature_c", temperatures).tolist() == [3, 1, 1, 0, 0, 1, 1, 2]
    assert part_scores("systolic_mmhg", np.array([90.4, 90.5, 219.4, 219.5])).tolist() == [
        3, 2, 0, 3,
    ]  # fmt: skip
    assert part_scores("oxygen_saturation_pct", np.array([91.4, 91.5])).tolist() == [3, 2]


def test_a_normal_patient_scores_zero_and_raises_nothing():
    assert score_one(**NORMAL)[:2] == (0, NO_ALERT)


def test_five_or_six_is_a_warning_seven_critical():
    # pulse 111 (2) + respiration 21 (2) = 4: no alert
    assert score_one(**{**NORMAL, "heart_rate_bpm": 111, "respiratory_rate_per_min": 21})[:2] == (
        4,
        NO_ALERT,
    )
    five = {**NORMAL, "heart_rate_bpm": 111, "respiratory_rate_per_min": 21, "temperature_c": 38.5}
    assert score_one(**five)[:2] == (5, WARNING)
    six = {**five, "oxygen_saturation_pct": 95}
    assert score_one(**six)[:2] == (6, WARNING)
    seven = {**six, "systolic_mmhg": 105}
    assert score_one(**seven)[:2] == (7, CRITICAL)


def test_a_single_parameter_scoring_three_is_a_warning_whatever_the_total():
    assert score_one(**{**NORMAL, "oxygen_saturation_pct": 91})[:2] == (3, WARNING)
    assert score_one(**{**NORMAL, "systolic_mmhg": 220})[:2] == (3, WARNING)


def test_a_missing_parameter_scores_nothing_and_marks_the_reading_incomplete():
    from monitoring.news2 import score

    readings = {name: np.array([value, value], dtype=float) for name, value in NORMAL.items()}
    readings["respiratory_rate_per_min"][1] = np.nan
    readings["heart_rate_bpm"][1] = 131
    scores = score(readings)
    assert scores.parts["respiratory_rate_per_min"].tolist() == [0, -1]
    assert scores.complete.tolist() == [True, False]
    assert scores.total.tolist() == [0, 3]
    assert scores.level.tolist() == [NO_ALERT, WARNING]


# SpO2 scale 2 (RCP 2017 chart 1, second SpO2 row): (value, on air, on oxygen) at every edge
SCALE_2_EDGES = [
    (80, 3, 3), (83, 3, 3), (84, 2, 2), (85, 2, 2), (86, 1, 1), (87, 1, 1), (88, 0, 0),
    (92, 0, 0), (93, 0, 1), (94, 0, 1), (95, 0, 2), (96, 0, 2), (97, 0, 3), (100, 0, 3),
]  # fmt: skip


@pytest.mark.parametrize(("value", "on_air", "on_oxygen"), SCALE_2_EDGES)
def test_spo2_scale_2_scores_by_its_own_bands_and_above_92_only_on_oxygen(value, on_air, on_oxygen):
    spo2 = np.array([value, value])
    oxygen = np.array([False, True])
    assert part_scores("oxygen_saturation_pct", spo2, oxygen, np.array([True, True])).tolist() == [
        on_air, on_oxygen,
    ]  # fmt: skip
    # scale 1 where scale 2 is not asked for, whatever the oxygen
    scale_1 = part_scores("oxygen_saturation_pct", spo2[:1])[0]
    assert part_scores("oxygen_saturation_pct", spo2, oxygen, np.array([False, False])).tolist() == [
        scale_1, scale_1,
    ]  # fmt: skip


def test_oxygen_adds_two_and_any_consciousness_but_alert_three_a_red_parameter():
    # a device score of 5 on air: pulse 111 (2), respiration 21 (2), temperature 38.5 (1)
    five = {**NORMAL, "heart_rate_bpm": 111, "respiratory_rate_per_min": 21, "temperature_c": 38.5}
    assert score_one(**five)[:2] == (5, WARNING)
    total, level, parts = score_one(on_oxygen=True, **five)
    assert (total, level, parts["supplemental_oxygen"]) == (7, CRITICAL, 2)
    total, level, parts = score_one(alert=False, **NORMAL)
    assert (total, level, parts["consciousness"]) == (3, WARNING, 3)


def test_a_target_of_88_to_92_scores_nothing_on_scale_2_and_a_warning_on_scale_1():
    hypercapnic = {**NORMAL, "oxygen_saturation_pct": 89}
    assert score_one(**hypercapnic)[:2] == (3, WARNING)
    assert score_one(scale_2=True, **hypercapnic)[:2] == (0, NO_ALERT)
    # on oxygen at 89: scale 2 scores the oxygen only
    assert score_one(scale_2=True, on_oxygen=True, **hypercapnic)[:2] == (2, NO_ALERT)
