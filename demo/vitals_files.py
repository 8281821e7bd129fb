"""Write realistic device-vitals micro-batches (`vitals_<timestamp>.ndjson`), defects included.

    python -m demo.vitals_files --files 5 --readings 200

One reading a line. Most readings are normal, some abnormal but possible (a heart rate of 35, a
fever of 104 F: valid data), a few physically impossible (a heart rate of 0 or 400, 200 F), one
line in a while is not JSON, and some devices send local times without an offset.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from common import settings
from common.whole_files import write_whole
from demo.patients import patient_id

log = logging.getLogger(__name__)

WARDS = ("ICU", "Cardiology", "Medical", "Surgical", "Emergency")
STATUSES = ("OK", "OK", "OK", "LOW_BATTERY", "SIGNAL_WEAK")


def _patient_on(device: int) -> str:
    """The patient a device is attached to for the demo's few minutes."""
    return patient_id(random.Random(device))


def _reading(rng: random.Random, device: int, at: datetime) -> dict:
    ward = WARDS[device % len(WARDS)]
    stamp = at.isoformat().replace("+00:00", "Z")
    if device % 7 == 0:  # these devices send local time without an offset
        stamp = (at - timedelta(hours=4)).replace(tzinfo=None).isoformat()
    elif device % 5 == 0:
        stamp = at.astimezone(timezone(timedelta(hours=-4))).isoformat()
    systolic = rng.randint(100, 140)
    return {
        "device_id": f"DEV_{device:04d}",
        "patient_id": _patient_on(device),
        "timestamp": stamp,
        "measurements": {
            "heart_rate": rng.randint(55, 100),
            "blood_pressure": {"systolic": systolic, "diastolic": systolic - rng.randint(30, 50)},
            "temperature": round(rng.uniform(97.0, 99.5), 1),
            "oxygen_saturation": rng.randint(94, 100),
            "respiratory_rate": rng.randint(12, 20),
        },
        "device_status": rng.choice(STATUSES),
        "location": {"hospital": "General Hospital", "ward": ward, "room": f"{device % 40 + 100}"},
    }


def _vary(rng: random.Random, reading: dict) -> dict | str:
    roll = rng.random()
    measurements = reading["measurements"]
    if roll < 0.03:
        measurements["heart_rate"] = rng.choice((35, 38, 145, 160))  # abnormal, possible
    elif roll < 0.04:
        measurements["temperature"] = 104.2  # fever: valid
    elif roll < 0.05:
        measurements["heart_rate"] = rng.choice((0, 400))  # impossible
    elif roll < 0.055:
        measurements["temperature"] = 200.0  # impossible
    elif roll < 0.058:
        return '{"device_id": "DEV_0001", "patient_id": '  # a line cut off mid-write
    return reading


def write_vitals(
    folder: Path,
    files: int = 5,
    readings: int = 200,
    start: datetime = datetime(2024, 3, 15, 14, 0, tzinfo=UTC),
    seed: int = 23,
) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(files):
        at = start + timedelta(seconds=5 * index)
        lines = []
        for number in range(readings):
            # 60 devices, each reading once a second within the file's 5 seconds
            moment = at + timedelta(seconds=number // 60 % 5)
            item = _vary(rng, _reading(rng, 1 + number % 60, moment))
            lines.append(item if isinstance(item, str) else json.dumps(item))
        path = folder / f"vitals_{at.strftime('%Y%m%dT%H%M%S')}_{index + 1:04d}.ndjson"
        write_whole(path, "\n".join(lines) + "\n")
        written.append(path)
    return written


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--readings", type=int, default=200)
    parser.add_argument("--folder", type=Path, default=settings.LANDING_DIR / "vitals")
    args = parser.parse_args()
    paths = write_vitals(args.folder, files=args.files, readings=args.readings)
    log.info("wrote %d vitals micro-batches to %s", len(paths), args.folder)


if __name__ == "__main__":
    main()
