"""Clinical operations' NEWS2 settings per patient (as `clinical_ops`: an insert, never a rewrite).

    hcw news2 set MRN0001 --oxygen --by "Dr Okafor, respiratory"
    hcw news2 set MRN0001 --scale 2 --by "Dr Okafor" --reason "hypercapnic respiratory failure"
    hcw news2 set MRN0001 --pregnant --by "Midwife, ward 7"
    hcw news2 show MRN0001

A setting holds from 5 seconds after it is recorded (or a later `--from`), never from the past: a
replay of the same readings then scores them as the live run did. The processor reads it before its next file
(news2_inputs.py); what the device payload sends wins over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from warehouse.connection import Warehouse

# a setting holds from this long after it is recorded (unless a later --from): by then its row is
# committed and visible to the processor, so no reading of that moment is scored without it live
# and with it in a replay
LEAD_SECONDS = 5


class NotRecorded(Exception):
    """A setting that says nothing, or says it for the past."""


@dataclass(frozen=True)
class Setting:
    on_oxygen: bool | None = None
    spo2_scale: int | None = None
    pregnant: bool | None = None
    under_16: bool | None = None

    def changes(self) -> dict[str, object]:
        return {name: value for name, value in vars(self).items() if value is not None}


def record(
    warehouse: Warehouse,
    patient_id: str,
    setting: Setting,
    by: str,
    reason: str | None = None,
    valid_from: datetime | None = None,
) -> datetime:
    """Record `setting` for the patient from `valid_from` (LEAD_SECONDS from now if None); when
    it holds from."""
    if not setting.changes():
        raise NotRecorded("say what to set: --oxygen/--air, --scale, --pregnant, --under-16")
    if not by.strip():
        raise NotRecorded("say who sets it (--by)")
    with psycopg.connect(**warehouse.connect_kwargs("clinical_ops")) as conn:
        try:
            [(held_from,)] = conn.execute(
                """
                insert into monitoring.news2_settings (patient_id, on_oxygen, spo2_scale,
                    pregnant, under_16, valid_from, recorded_by, reason)
                values (upper(btrim(%(patient)s)), %(on_oxygen)s, %(spo2_scale)s, %(pregnant)s,
                    %(under_16)s, coalesce(%(from)s, now() + %(lead)s::interval), btrim(%(by)s),
                    %(reason)s)
                returning valid_from
                """,
                {**vars(setting), "patient": patient_id, "from": valid_from, "by": by,
                 "reason": reason, "lead": f"{LEAD_SECONDS} seconds"},
            ).fetchall()  # fmt: skip
        except psycopg.errors.CheckViolation as error:
            if error.diag.constraint_name == "held_from_when_recorded":
                raise NotRecorded(
                    "a setting holds from now or later, never from the past (--from)"
                ) from None
            raise NotRecorded(f"refused by the rule {error.diag.constraint_name}") from None
    return held_from


def history(warehouse: Warehouse, patient_id: str) -> list[tuple]:
    """The patient's settings, oldest first: (valid_from, what it set, by, reason)."""
    with psycopg.connect(**warehouse.connect_kwargs("clinical_ops")) as conn:
        return conn.execute(
            """
            select valid_from, on_oxygen, spo2_scale, pregnant, under_16, recorded_by, reason
            from monitoring.news2_settings where patient_id = upper(btrim(%s))
            order by valid_from, setting_key
            """,
            (patient_id,),
        ).fetchall()
