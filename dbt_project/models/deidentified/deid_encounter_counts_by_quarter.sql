{#-
    Encounters and patients by calendar quarter: the only calendar time of EHR encounters that
    reaches analysts. A quarter is finer than Safe Harbor lets a patient's record carry, so it is
    counted here, from the dates, and leaves this layer only as totals, suppressed from 1 to 10
    (CMS cell size, var min_cell_size). Totals only, by nothing a published row also carries:
    counts by diagnosis chapter and quarter would place every encounter of a chapter whose counts
    fall in a single quarter there, and the patient's other events with it (their offsets), so
    version 1's chapter breakdown is withdrawn (docs/deidentification.md).
-#}

with

encounters as (
    select * from {{ ref('stg_ehr__encounters') }}
),

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

counted as (
    select
        extract(year from encounters.visit_date)::integer as visit_year,
        extract(quarter from encounters.visit_date)::integer as visit_quarter,
        count(*) as encounter_count,
        count(distinct patients.patient_key) as patient_count
    from encounters
    inner join patients
        on encounters.patient_id = patients.patient_id
    group by 1, 2
),

suppressed as (
    select
        visit_year,
        visit_quarter,
        {{ suppressed_count('encounter_count') }} as encounter_count,
        {{ suppressed_count('patient_count') }} as patient_count,
        {{ is_suppressed('encounter_count') }} or {{ is_suppressed('patient_count') }}
            as is_suppressed
    from counted
)

select * from suppressed
