{#-
    HIPAA Safe Harbor: the patient identifier is replaced by its random surrogate key from the
    crosswalk, and the visit keeps its year only.
-#}

with

encounters as (
    select * from {{ ref('stg_ehr__encounters') }}
),

crosswalk as (
    select * from {{ ref('patient_crosswalk') }}
),

deidentified as (
    select
        md5(encounters.encounter_id) as encounter_key,
        crosswalk.patient_key,
        extract(year from encounters.visit_date)::integer as visit_year,
        encounters.diagnosis_code,
        encounters.diagnosis_description,
        encounters.treatment_code,
        encounters.physician_id,
        encounters.department_name,
        encounters.landed_at
    from encounters
    inner join crosswalk
        on encounters.patient_id = crosswalk.patient_id
)

select * from deidentified
