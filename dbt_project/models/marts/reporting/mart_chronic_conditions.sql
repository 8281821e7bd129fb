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
ordered as (
    select
        patients_with_condition.*,
        row_number() over (order by patients_with_condition.condition_group) as place
    from patients_with_condition
),

decided as (
    select {{ hidden_cells('encounter_count', 'place') }} as encounters_hidden
    from ordered
),

final as (
    select
        ordered.condition_group,
        -- a group's patients are at most its encounters: hidden with them
        case
            when decided.encounters_hidden[ordered.place]
                or {{ is_suppressed('ordered.patient_count') }}
                then null
            else ordered.patient_count
        end as patient_count,
        case
            when decided.encounters_hidden[ordered.place] then null else ordered.encounter_count
        end as encounter_count,
        {{ is_suppressed('ordered.patient_count') }} or decided.encounters_hidden[ordered.place]
            as is_suppressed
    from ordered
    cross join decided
)

select * from final
