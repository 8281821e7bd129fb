{#-
    Encounters and patients by calendar quarter: the only calendar time of EHR encounters that
    reaches analysts. A quarter is finer than Safe Harbor lets a patient's record carry, so it is
    counted here, from the dates, and leaves this layer only as totals, suppressed from 1 to 10
    (CMS cell size, var min_cell_size), and, as the quarters add up to the count of the published
    encounters, a quarter hidden alone is hidden with the smallest other one (complementary
    suppression, macros/reporting.sql). Totals only, by nothing a published row also carries:
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

-- the quarters' encounter counts add up to the number of encounters analysts count in
-- fct_encounters; patients do not add up (one patient, several quarters)
decided as (
    select
        counted.*,
        {{ hidden_in_group('counted.encounter_count', 'counted.visit_year, counted.visit_quarter') }}
            as encounter_count_hidden
    from counted
),

suppressed as (
    select
        visit_year,
        visit_quarter,
        case when encounter_count_hidden then null else encounter_count end as encounter_count,
        -- a quarter's patients are at most its encounters: hidden with them
        {{ suppressed_count('patient_count', 'encounter_count_hidden') }} as patient_count,
        encounter_count_hidden or {{ is_suppressed('patient_count') }} as is_suppressed
    from decided
)

select * from suppressed
