"""A ward's bedside monitors in real time: one reading a second per bed, written as micro-batches
the way a device gateway delivers them, with chosen patients deteriorating on a schedule.

    python -m demo.ward_vitals --beds 60 --seconds 600 --deteriorating 7

Each file covers `seconds_per_file` of readings and is written under a temporary name, then renamed
into the landing folder (a reader never sees half a file). A normal reading scores 0 on NEWS2; a
deteriorating patient is normal, then at warning level (NEWS2 5), then critical (NEWS2 10), then
recovers, at the times its `Deterioration` gives.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import settings
from common.whole_files import write_whole
from demo.patients import FIRST_PATIENT
from demo.vitals_files import WARDS

log = logging.getLogger(__name__)

START = datetime(2024, 3, 15, 14, 0, tzinfo=UTC)

# severity -> (respiration, SpO2, systolic, pulse, temperature F): NEWS2 0, 5 and 10
SIGNS = {
    0: (16, 98, 124, 72, 98.4),
    1: (22, 96, 124, 118, 101.3),  # 2 + 0 + 0 + 2 + 1 = 5
    2: (26, 91, 95, 125, 101.3),  # 3 + 3 (or 2) + 2 + 2 + 1 = 10 or 11
}


@dataclass(frozen=True)
class Deterioration:
    """A bed's patient: at warning level from `warning_at`, critical from `critical_at`, normal
    again from `recovered_at` (seconds from the start; None: never)."""

    bed: int
    warning_at: float
    critical_at: float | None = None
    recovered_at: float | None = None

    def severity(self, second: float) -> int:
        if self.recovered_at is not None and second >= self.recovered_at:
            return 0
        if self.critical_at is not None and second >= self.critical_at:
            return 2
        return 1 if second >= self.warning_at else 0


def patient_on(bed: int) -> str:
    return f"PAT_{FIRST_PATIENT + bed}"


def reading(rng: random.Random, bed: int, at: datetime, severity: int) -> dict:
    respiration, spo2, systolic, pulse, temperature = SIGNS[severity]
    return {
        "device_id": f"BED_{bed:04d}",
        "patient_id": patient_on(bed),
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "measurements": {
            "heart_rate": pulse + rng.randint(-3, 3),
            "blood_pressure": {"systolic": systolic + rng.randint(-4, 4), "diastolic": 78},
            "temperature": round(temperature + rng.uniform(-0.3, 0.3), 1),
            "oxygen_saturation": min(100, spo2 + rng.randint(0, 1)),
            "respiratory_rate": respiration + rng.choice((-1, 0, 0, 1)),
        },
        "device_status": "OK",
        "location": {
            "hospital": "General Hospital",
            "ward": WARDS[bed % len(WARDS)],
            "room": f"{200 + bed}",
        },
    }


def micro_batches(
    beds: int,
    files: int,
    seconds_per_file: int = 5,
    deteriorating: tuple[Deterioration, ...] = (),
    start: datetime = START,
    seed: int = 11,
) -> Iterator[tuple[str, str]]:
    """(file name, NDJSON text) of each micro-batch in order: every bed, once a second."""
    rng = random.Random(seed)
    plans = {plan.bed: plan for plan in deteriorating}
    for index in range(files):
        lines = []
        for offset in range(seconds_per_file):
            second = index * seconds_per_file + offset
            at = start + timedelta(seconds=second)
            for bed in range(beds):
                severity = plans[bed].severity(second) if bed in plans else 0
                lines.append(json.dumps(reading(rng, bed, at, severity)))
        first = start + timedelta(seconds=index * seconds_per_file)
        yield f"vitals_{first:%Y%m%dT%H%M%S}_{index + 1:05d}.ndjson", "\n".join(lines) + "\n"


def drop(folder: Path, name: str, text: str) -> Path:
    """Write under a temporary name, then rename into place: the file appears whole."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_whole(folder / name, text)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beds", type=int, default=60)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--deteriorating", type=int, nargs="*", default=[7])
    args = parser.parse_args()
    plans = tuple(Deterioration(bed, 60, 120, 480) for bed in args.deteriorating)
    folder = settings.LANDING_DIR / "vitals"
    batches = list(micro_batches(args.beds, args.seconds // 5, deteriorating=plans))
    for name, text in batches:
        drop(folder, name, text)
    log.info("wrote %d micro-batches of %d beds to %s", len(batches), args.beds, folder)


if __name__ == "__main__":
    main()
