"""The demo's people: one pool of patients and providers that every demo source draws from, so
the same patient appears in EHR extracts, claims, device readings, trials and the FHIR server.

Each patient's identifiers are generated from their number alone (`person(number)`), so every
source that needs a name, an address or an SSN gives the same one. Every field is filled in, so
the de-identification tests have every kind of identifier to look for. A few patients are, on
purpose, over 89, live in a restricted three-digit ZIP area, or have died.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from faker import Faker

PATIENTS = 500
FIRST_PATIENT = 10000

# Three-digit ZIP areas of 20,000 people or fewer (seeds/restricted_zip3.csv).
RESTRICTED_ZIP3_SAMPLE = ("036", "059", "102", "692", "821", "878")


@dataclass(frozen=True)
class Person:
    patient_id: str  # the hospital's MRN: every source but FHIR calls it patient_id
    given_name: str
    family_name: str
    sex: str
    birth_date: date
    death_date: date | None
    ssn: str
    street_address: str
    city: str
    state: str
    zip_code: str
    phone: str
    email: str


def patient_id(rng: random.Random) -> str:
    return f"PAT_{FIRST_PATIENT + rng.randrange(PATIENTS)}"


def person(number: int) -> Person:
    """Patient `number` (0 .. PATIENTS-1): the same person every time."""
    fake = Faker("en_US")
    fake.seed_instance(104_729 + number)
    rng = random.Random(number)
    sex = rng.choice(("male", "female"))
    given = fake.first_name_male() if sex == "male" else fake.first_name_female()
    if number % 25 == 3:  # over 89 at every visit of the demo years
        birth_date = date(1925, 1, 1) + timedelta(days=rng.randrange(7 * 365))
    else:
        birth_date = date(1935, 1, 1) + timedelta(days=rng.randrange(85 * 365))
    zip_code = fake.zipcode()
    if number % 20 == 7:
        zip_code = RESTRICTED_ZIP3_SAMPLE[number % len(RESTRICTED_ZIP3_SAMPLE)] + zip_code[3:]
    return Person(
        patient_id=f"PAT_{FIRST_PATIENT + number}",
        given_name=given,
        family_name=fake.last_name(),
        sex=sex,
        birth_date=birth_date,
        death_date=date(2024, 6, 1) + timedelta(days=rng.randrange(90))
        if number % 30 == 11
        else None,
        ssn=fake.ssn(),
        street_address=fake.street_address(),
        city=fake.city(),
        state=fake.state_abbr(include_territories=False),
        zip_code=zip_code,
        phone=fake.phone_number(),
        email=fake.email(),
    )


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
