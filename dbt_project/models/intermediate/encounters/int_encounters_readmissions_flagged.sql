{#-
    All-cause 30-day readmissions, computed on the visit dates before the de-identified layer
    generalises them. Encounters of one patient on one day are one stay: the first (by encounter
    id) is the stay, the others are same-day transfers, neither index nor readmission. A stay is
    followed by a readmission when the patient's next stay begins 1 to 30 days later: the 30th day
    counts, the 31st does not. EHR extracts carry one date per encounter, so the window runs from
    that date (admission and discharge are the same day for the encounters sent). Planned
    readmissions are not told apart: the extracts carry no admission type. Stays are grouped by
    the patient's surrogate key, so nothing here is computed from the MRN itself.
-#}

with

encounters as (
    select * from {{ ref('stg_ehr__encounters') }}
),

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

ordered as (
    select
        encounters.encounter_id,
        patients.patient_key,
        encounters.visit_date,
        row_number() over (
            partition by patients.patient_key, encounters.visit_date
            order by encounters.encounter_id
        ) as rank_within_day
    from encounters
    inner join patients
        on encounters.patient_id = patients.patient_id
),

stays as (
    select
        encounter_id,
        patient_key,
        visit_date,
        lead(visit_date) over (partition by patient_key order by visit_date) as next_stay_date
    from ordered
    where rank_within_day = 1
),

flagged as (
    select
        ordered.encounter_id,
        ordered.patient_key,
        ordered.rank_within_day > 1 as is_same_day_transfer,
        stays.next_stay_date - stays.visit_date as days_to_next_stay,
        coalesce(stays.next_stay_date - stays.visit_date between 1 and 30, false)
            as is_readmitted_within_30_days
    from ordered
    left join stays
        on ordered.encounter_id = stays.encounter_id
)

select * from flagged
