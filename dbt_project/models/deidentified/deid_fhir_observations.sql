{#-
    FHIR vital signs without their patient, one row per value measured (version 3: a blood
    pressure panel's systolic and diastolic are two rows of one Observation, `panel_loinc_code`
    naming the panel; stg_fhir__observations says what counts): surrogate keys, the value in its
    normalised unit, the code's LOINC name (seed loinc_vital_signs; never the display the server
    sent), statuses and units only when listed (macros/free_text.sql), the time as whole hours
    from the patient's hour anchor (no calendar year: deid_encounters says why).
-#}

with

observations as (
    select * from {{ ref('stg_fhir__observations') }}
),

identities as (
    select * from {{ ref('int_patient_identities_resolved') }}
    where source_name = 'fhir'
),

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

loinc as (
    select * from {{ ref('loinc_vital_signs') }}
),

keys as (
    select * from {{ ref('identifier_crosswalk') }}
    where identifier_type in ('fhir_observation', 'fhir_encounter')
),

deidentified as (
    select
        observation_keys.surrogate_key as fhir_observation_key,
        encounter_keys.surrogate_key as fhir_encounter_key,
        patients.patient_key,
        {{ formatted_identifier('observations.loinc_code', 'loinc_code') }} as loinc_code,
        loinc.loinc_display,
        {{ formatted_identifier('observations.panel_loinc_code', 'loinc_code') }}
            as panel_loinc_code,
        observations.component_number,
        observations.value,
        {{ listed_value('observations.ucum_unit', 'ucum_unit') }} as ucum_unit,
        {{ listed_value('observations.observation_status', 'fhir_observation_status') }}
            as observation_status,
        {{ hours_since_anchor('observations.observed_at', 'patients.hour_anchor_at') }}
            as observed_hour_offset,
        {{ limited_data_set_only('observations.observed_at', 'timestamptz') }} as observed_at
    from observations
    inner join identities
        on observations.fhir_patient_reference = identities.source_patient_reference
    inner join patients
        on identities.patient_id = patients.patient_id
    inner join keys as observation_keys
        on observation_keys.identifier_type = 'fhir_observation'
        and observations.fhir_observation_reference = observation_keys.identifier
    left join keys as encounter_keys
        on encounter_keys.identifier_type = 'fhir_encounter'
        and observations.fhir_encounter_reference = encounter_keys.identifier
    left join loinc
        on observations.loinc_code = loinc.loinc_code
)

select * from deidentified
