{#-
    Patients with each chronic condition group (seed chronic_condition_groups) and their
    encounters that recorded it. Counts from 1 to 10 are suppressed (CMS cell-size policy).
    Version 2 has no calendar year: a group whose counts fall in a single year would date every
    encounter of it that analysts see, and the patient's other events with it (their offsets).
-#}

with

encounters as (
    select * from {{ ref('deid_encounters') }}
),

groups as (
    select * from {{ ref('chronic_condition_groups') }}
),

patients_with_condition as (
    select
        groups.condition_group,
        count(distinct encounters.patient_key) as patient_count,
        count(*) as encounter_count
    from encounters
    inner join groups
        on left(encounters.diagnosis_code, 3) = groups.icd10cm_category
    group by groups.condition_group
),

final as (
    select
        condition_group,
        {{ suppressed_count('patient_count') }} as patient_count,
        {{ suppressed_count('encounter_count') }} as encounter_count,
        {{ is_suppressed('patient_count') }} or {{ is_suppressed('encounter_count') }}
            as is_suppressed
    from patients_with_condition
)

select * from final
