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

-- each category is in one group, so the groups' encounters add up to those of the categories
-- (a reader who has the seed counts them in fct_encounters): complementary suppression; patients
-- do not add up (one patient, several conditions)
decided as (
    select
        patients_with_condition.*,
        {{ hidden_in_group(
            'patients_with_condition.encounter_count', 'patients_with_condition.condition_group'
        ) }} as encounter_count_hidden
    from patients_with_condition
),

final as (
    select
        condition_group,
        -- a group's patients are at most its encounters: hidden with them
        {{ suppressed_count('patient_count', 'encounter_count_hidden') }} as patient_count,
        case when encounter_count_hidden then null else encounter_count end as encounter_count,
        {{ is_suppressed('patient_count') }} or encounter_count_hidden as is_suppressed
    from decided
)

select * from final
