{#-
    All-cause 30-day readmissions by index stay: every stay (same-day transfers folded into the
    stay they continue) with whether the patient came back within 30 days. The window was computed
    on the dates (int_encounters_readmissions_flagged) before they were generalised. One row per
    stay, so it counts no patients and needs no cell suppression; aggregate it with care.
-#}

with

encounters as (
    select * from {{ ref('deid_encounters') }}
),

diagnoses as (
    select * from {{ ref('dim_diagnosis') }}
),

index_stays as (
    select
        encounters.encounter_key,
        encounters.patient_key,
        encounters.visit_day_offset,
        encounters.age_at_visit,
        encounters.department_name,
        encounters.diagnosis_code,
        diagnoses.chapter_number,
        diagnoses.chapter_description,
        encounters.is_readmitted_within_30_days,
        case
            when encounters.is_readmitted_within_30_days then encounters.days_to_next_stay
        end as days_to_readmission
    from encounters
    left join diagnoses
        on encounters.diagnosis_code = diagnoses.diagnosis_code
    where not encounters.is_same_day_transfer
)

select * from index_stays
