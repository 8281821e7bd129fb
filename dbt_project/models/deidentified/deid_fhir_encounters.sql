{#-
    FHIR Encounters without their patient: surrogate keys, the start as whole hours from the
    patient's hour anchor (no calendar year: deid_encounters says why), the length in minutes.
-#}

with

encounters as (
    select * from {{ ref('stg_fhir__encounters') }}
),

identities as (
    select * from {{ ref('int_patient_identities_resolved') }}
    where source_name = 'fhir'
),

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

keys as (
    select * from {{ ref('identifier_crosswalk') }}
    where identifier_type = 'fhir_encounter'
),

deidentified as (
    select
        keys.surrogate_key as fhir_encounter_key,
        patients.patient_key,
        {{ formatted_identifier('encounters.fhir_practitioner_id', 'fhir_practitioner_id') }}
            as fhir_practitioner_id,
        {{ listed_value('encounters.encounter_status', 'fhir_encounter_status') }}
            as encounter_status,
        {{ listed_value('encounters.encounter_class', 'fhir_encounter_class') }}
            as encounter_class,
        {{ hours_since_anchor('encounters.started_at', 'patients.hour_anchor_at') }}
            as started_hour_offset,
        (extract(epoch from encounters.ended_at - encounters.started_at) / 60)::integer
            as duration_minutes,
        {{ limited_data_set_only('encounters.started_at', 'timestamptz') }} as started_at,
        {{ limited_data_set_only('encounters.ended_at', 'timestamptz') }} as ended_at
    from encounters
    inner join identities
        on encounters.fhir_patient_reference = identities.source_patient_reference
    inner join patients
        on identities.patient_id = patients.patient_id
    inner join keys
        on encounters.fhir_encounter_reference = keys.identifier
)

select * from deidentified
