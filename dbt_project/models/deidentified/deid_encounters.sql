{#-
    EHR encounters without their patient: a surrogate encounter and patient key, the visit as
    whole days from the patient's anchor, the age at the visit ('90+' on every row of a patient of
    90 or over), the readmission flags computed on the dates (intervals survive); the visit date
    itself only under a limited data set. The diagnosis is described by ICD-10-CM's title for its
    code, never by the EHR's text; department, physician and treatment only when listed or of
    their configured shape (macros/free_text.sql). No calendar year: one event's year beside the offsets
    of the patient's others would place them all (an event after New Year at 2 days from one
    before it was on January 1 or 2); calendar time is published in aggregates only
    (docs/deidentification.md).
-#}

with

encounters as (
    select * from {{ ref('stg_ehr__encounters') }}
),

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

keys as (
    select * from {{ ref('identifier_crosswalk') }}
    where identifier_type = 'ehr_encounter'
),

readmissions as (
    select * from {{ ref('int_encounters_readmissions_flagged') }}
),

diagnoses as (
    select * from {{ ref('icd10cm_codes') }}
),

deidentified as (
    select
        keys.surrogate_key as encounter_key,
        patients.patient_key,
        {{ days_since_anchor('encounters.visit_date', 'patients.anchor_at') }} as visit_day_offset,
        {{ age_category('patients.birth_date', 'encounters.visit_date', 'patients.age_at_last_event') }}
            as age_at_visit,
        {{ limited_data_set_only('encounters.visit_date', 'date') }} as visit_date,
        encounters.diagnosis_code,
        diagnoses.diagnosis_description,
        {{ formatted_identifier('encounters.treatment_code', 'treatment_code') }} as treatment_code,
        {{ formatted_identifier('encounters.physician_id', 'physician_id') }} as physician_id,
        {{ listed_value('encounters.department_name', 'ehr_department') }} as department_name,
        readmissions.is_same_day_transfer,
        readmissions.days_to_next_stay,
        readmissions.is_readmitted_within_30_days,
        encounters.landed_at as _landed_at
    from encounters
    inner join patients
        on encounters.patient_id = patients.patient_id
    inner join keys
        on encounters.encounter_id = keys.identifier
    inner join readmissions
        on encounters.encounter_id = readmissions.encounter_id
    left join diagnoses
        on encounters.diagnosis_code = diagnoses.diagnosis_code
)

select * from deidentified
