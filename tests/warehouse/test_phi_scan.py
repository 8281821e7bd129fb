"""The identifier index: what it finds in a text and in a number."""

from __future__ import annotations

from warehouse.phi_scan import IdentifierIndex

INDEX = IdentifierIndex(
    {
        "geographic_subdivision": {"21345"},
        "social_security_number": {"123-45-6789"},
        "telephone_number": {"5550104477"},
        "medical_record_number": {"PAT_10001"},
    }
)


def test_a_text_holding_an_identifier_is_found_whatever_its_separators():
    assert INDEX.classes_in("pat-10001 (readmitted)") == {"medical_record_number"}
    assert INDEX.classes_in("lives in 21345") == {"geographic_subdivision"}
    assert INDEX.classes_in("123 45 6789") == {"social_security_number"}
    assert INDEX.classes_in("a1b2pat10001") == set()


def test_a_number_equal_to_a_zip_by_chance_is_no_finding_but_a_long_one_is():
    # an hour offset of -21345 is a number column's value, not a ZIP
    assert INDEX.classes_in("-21345", number=True) == set()
    assert INDEX.classes_in("5550104477", number=True) == {"telephone_number"}
    # the same offset written into a text column is looked at as text
    assert INDEX.classes_in("-21345") == {"geographic_subdivision"}


def test_a_zip_in_a_text_is_found_but_not_the_digits_of_a_decimal_number():
    assert INDEX.classes_in("'_run_time_sort': 1796078714.21345,") == set()
    assert INDEX.classes_in("observed 21345.5 ms") == set()
    assert INDEX.classes_in("Boston, MA 21345.") == {"geographic_subdivision"}
    assert INDEX.classes_in("[21345,02139]") == {"geographic_subdivision"}  # a list, not 21345.02
    assert INDEX.classes_in("zip=21345,ssn=123-45-6789") == {
        "geographic_subdivision",
        "social_security_number",
    }


def test_a_zip_in_a_text_is_found_but_not_a_field_of_a_date_times_repr():
    # the microseconds of the time Airflow queued a run, as its task logs print it
    queued = "run_after=DateTime(2026, 12, 5, 0, 55, 34, 21345, tzinfo=Timezone('UTC'))"
    assert INDEX.classes_in(queued) == set()
    assert INDEX.classes_in("datetime.datetime(2026, 12, 5, 0, 55, 34, 21345)") == set()
    assert INDEX.classes_in("DateTime(2026, 12, 5) for zip 21345") == {"geographic_subdivision"}
    assert INDEX.classes_in("DateTime(21345)") == {"geographic_subdivision"}  # no date-time
