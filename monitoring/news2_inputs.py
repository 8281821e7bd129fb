"""What NEWS2 needs beyond the five measured vitals, for each reading, and where it came from.

- Consciousness (ACVPU: alert, new confusion, voice, pain, unresponsive): from the device payload
  (`measurements.consciousness`, a letter or the word), else assumed alert; a value sent and not
  understood scores as not alert (3).
- Supplemental oxygen: on oxygen if the payload (`measurements.supplemental_oxygen`: true/false,
  "oxygen"/"air", yes/no, 1/0) or the patient's setting says so, else on air (assumed if neither
  says anything): the riskier of the two wins.
- SpO2 scale: from the patient's setting (scale 2 for hypercapnic respiratory failure, as a
  clinician decides), else from the payload (`measurements.spo2_scale`: 1 or 2), else scale 1.
- Whether NEWS2 is validated for the patient: RCP 2017 excludes under-16s and pregnancy. The
  processor holds no birth dates (least privilege: its role reads device readings only), so
  clinical operations flag a child or a pregnancy in the setting (a simplification, named in
  docs/monitoring.md). Such a patient's score and alerts stay, labelled NOT_VALIDATED_LABEL.

The settings (monitoring.news2_settings, `hcw news2 set`) are a history: each row changes the
fields it holds from its `valid_from`, which is never before it was recorded, so a reading is
scored with the settings in force at the reading's time, live and in a replay alike. A payload
value the processor does not understand is named among the reading's artefacts; for oxygen and the
scale the setting or the assumption stands in.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg

NOT_VALIDATED_LABEL = "NEWS2 not validated for this patient: use PEWS / MEOWS"
ASSUMED, DEVICE, SETTING = "assumed", "device", "patient setting"
NOT_UNDERSTOOD = "device, not understood"
# the payload's words for each ACVPU level
ACVPU = {
    "A": "A", "ALERT": "A", "C": "C", "CONFUSION": "C", "NEW CONFUSION": "C", "CONFUSED": "C",
    "NEW-CONFUSION": "C", "NEW_CONFUSION": "C", "V": "V", "VOICE": "V", "VERBAL": "V", "P": "P",
    "PAIN": "P", "U": "U", "UNRESPONSIVE": "U",
}  # fmt: skip
# a consciousness the device sent and nobody understands is scored as not alert (3): the device
# saw something other than "alert", and under-warning is the worse error
NOT_UNDERSTOOD_CONSCIOUSNESS = "C"
OXYGEN = {
    "TRUE": True, "OXYGEN": True, "O2": True, "YES": True, "1": True,
    "FALSE": False, "AIR": False, "NO": False, "0": False,
}  # fmt: skip
SCALES = {"1": 1, "2": 2, "1.0": 1, "2.0": 2}
# the payload's column for each input, as landed in raw_vitals.readings
PAYLOAD = {
    "consciousness": "measurements__consciousness",
    "supplemental_oxygen": "measurements__supplemental_oxygen",
    "spo2_scale": "measurements__spo2_scale",
}
SETTING_FIELDS = ("on_oxygen", "spo2_scale", "pregnant", "under_16")


@dataclass
class PatientSettings:
    """Every setting recorded, by patient id: each field's changes in `valid_from` order."""

    # patient id -> field -> [(valid_from in microseconds, setting key, value)]
    changes: dict[str, dict[str, list[tuple[int, int, object]]]] = field(default_factory=dict)
    last_key: int = 0
    seen: set[int] = field(default_factory=set)

    def refresh(self, conn: psycopg.Connection) -> None:
        """Read the settings recorded since the last refresh, and those of the last minutes again:
        keys are handed out before commit, so a row may become visible after a higher one."""
        rows = conn.execute(
            """
            select setting_key, patient_id,
                (extract(epoch from valid_from) * 1000000)::bigint,
                on_oxygen, spo2_scale, pregnant, under_16
            from monitoring.news2_settings
            where setting_key > %s or recorded_at > now() - interval '10 minutes'
            order by setting_key
            """,
            (self.last_key,),
        ).fetchall()
        for setting_key, patient_id, valid_from_us, *values in rows:
            if setting_key in self.seen:
                continue
            self.seen.add(setting_key)
            fields = self.changes.setdefault(patient_id, {})
            for name, value in zip(SETTING_FIELDS, values, strict=True):
                if value is not None:
                    bisect.insort(fields.setdefault(name, []), (valid_from_us, setting_key, value))
            self.last_key = max(self.last_key, setting_key)

    def in_force(self, patient_id: str, name: str, measured_us: int) -> object | None:
        """The value of field `name` for the patient at `measured_us`; None if never set."""
        history = self.changes.get(patient_id, {}).get(name, [])
        position = bisect.bisect_right(history, (measured_us, float("inf")))
        return history[position - 1][2] if position else None


@dataclass(frozen=True)
class Inputs:
    """Each reading's inputs: arrays in the readings' order."""

    consciousness: np.ndarray  # ACVPU letter
    on_oxygen: np.ndarray  # bool
    spo2_scale: np.ndarray  # 1 or 2
    sources: dict[str, np.ndarray]  # input -> DEVICE, SETTING or ASSUMED
    not_validated: np.ndarray  # None, "under 16" or "pregnant"
    not_understood: list[tuple[str, ...]]  # the payload inputs that were no input

    def assumed(self) -> list[tuple[str, ...]]:
        """Each reading's inputs neither the device nor a setting gave."""
        return _named_flags({name: self.sources[name] == ASSUMED for name in self.sources})

    def described(self, row: int) -> str:
        """What reading `row`'s score rested on, as JSON for its alert."""
        values = {
            "consciousness": str(self.consciousness[row]),
            "supplemental_oxygen": "oxygen" if self.on_oxygen[row] else "air",
            "spo2_scale": int(self.spo2_scale[row]),
        }
        return json.dumps(
            {name: {"value": value, "from": str(self.sources[name][row])}
             for name, value in values.items()}
        )  # fmt: skip


def _from_payload(values: pd.Series, words: dict[str, object]) -> tuple[pd.Series, np.ndarray]:
    """The payload's values read by `words` (None where absent or not understood), and where a
    value was sent and not understood. Most devices send none: then nothing is read."""
    sent = values.notna().to_numpy(dtype=bool, copy=True)
    read = pd.Series([None] * len(values), index=values.index, dtype=object)
    for row in np.flatnonzero(sent).tolist():
        text = str(values.iat[row]).strip().upper()
        read.iat[row] = words.get(text)
        sent[row] = bool(text)
    return read, sent & read.isna().to_numpy(dtype=bool)


def resolve(readings: pd.DataFrame, settings: PatientSettings) -> Inputs:
    """The inputs of each of `readings` (with patient_id, measured_us and the PAYLOAD columns)."""
    count = len(readings)
    consciousness, bad_consciousness = _from_payload(readings[PAYLOAD["consciousness"]], ACVPU)
    oxygen, bad_oxygen = _from_payload(readings[PAYLOAD["supplemental_oxygen"]], OXYGEN)
    scale, bad_scale = _from_payload(readings[PAYLOAD["spo2_scale"]], SCALES)
    sources = {
        "consciousness": np.where(
            consciousness.notna(), DEVICE, np.where(bad_consciousness, NOT_UNDERSTOOD, ASSUMED)
        ).astype(object),
        "supplemental_oxygen": np.where(oxygen.notna(), DEVICE, ASSUMED).astype(object),
        "spo2_scale": np.where(scale.notna(), DEVICE, ASSUMED).astype(object),
    }
    oxygen, scale = (
        oxygen.to_numpy(dtype=object, copy=True),
        scale.to_numpy(dtype=object, copy=True),
    )
    not_validated = np.full(count, None, dtype=object)
    patients = readings["patient_id"].to_numpy()
    measured = readings["measured_us"].to_numpy()
    # the few readings of patients with a setting, one by one: the SpO2 scale is a clinician's
    # decision, so the setting wins over the device; for oxygen the riskier of the two wins (on
    # oxygen scores 2 more: a device's default "air" never hides a prescription)
    for row in np.flatnonzero(readings["patient_id"].isin(list(settings.changes)).to_numpy()):
        patient, at = patients[row], int(measured[row])
        prescribed_scale = settings.in_force(patient, "spo2_scale", at)
        if prescribed_scale is not None:
            scale[row], sources["spo2_scale"][row] = prescribed_scale, SETTING
        set_on_oxygen = settings.in_force(patient, "on_oxygen", at)
        if set_on_oxygen is not None and (
            oxygen[row] is None or (set_on_oxygen and not oxygen[row])
        ):
            oxygen[row], sources["supplemental_oxygen"][row] = set_on_oxygen, SETTING
        if settings.in_force(patient, "under_16", at):
            not_validated[row] = "under 16"
        elif settings.in_force(patient, "pregnant", at):
            not_validated[row] = "pregnant"
    return Inputs(
        consciousness=np.where(
            bad_consciousness, NOT_UNDERSTOOD_CONSCIOUSNESS, consciousness.fillna("A")
        ).astype(object),
        on_oxygen=(oxygen == True).astype(bool),  # None (no word) and False alike are air
        spo2_scale=np.where(scale == 2, 2, 1).astype(np.int16),
        sources=sources,
        not_validated=not_validated,
        not_understood=_named_flags(
            dict(zip(PAYLOAD, (bad_consciousness, bad_oxygen, bad_scale), strict=True))
        ),
    )


def _named_flags(flags: dict[str, np.ndarray]) -> list[tuple[str, ...]]:
    """Each row's names whose flag holds, as a tuple (most rows share one: built once each)."""
    names = list(flags)
    codes = np.zeros(len(next(iter(flags.values()))), dtype=np.int64)
    for bit, name in enumerate(names):
        codes |= flags[name].astype(np.int64) << bit
    named = {
        code: tuple(name for bit, name in enumerate(names) if code >> bit & 1)
        for code in np.unique(codes).tolist()
    }
    return [named[code] for code in codes.tolist()]
