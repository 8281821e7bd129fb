"""The demo's people: one pool of patients and providers that every demo source draws from, so
the same patient id appears in EHR extracts, claims and device readings.
"""

from __future__ import annotations

import random

PATIENTS = 500
FIRST_PATIENT = 10000


def patient_id(rng: random.Random) -> str:
    return f"PAT_{FIRST_PATIENT + rng.randrange(PATIENTS)}"


def npi_check_digit(first_nine: str) -> int:
    """Luhn over '80840' + the nine digits, as CMS defines the NPI check digit."""
    total = 24  # the doubled-and-summed digits of the prefix 80840
    for index, digit in enumerate(reversed(first_nine)):
        value = int(digit) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def npi(rng: random.Random, valid: bool = True) -> str:
    first_nine = str(rng.choice((1, 2))) + "".join(str(rng.randrange(10)) for _ in range(8))
    check = npi_check_digit(first_nine)
    return first_nine + str(check if valid else (check + rng.randrange(1, 10)) % 10)
