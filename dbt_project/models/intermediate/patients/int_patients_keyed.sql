{#-
    One row per resolved patient: their surrogate key, their anchor, the demographics the
    de-identified layer generalises and their age at their last dated event (not a reading),
    which decides whether they are 90 or over on every row. The registry is the source of truth; a patient the registry
    does not know takes their demographics from their latest FHIR Patient.
-#}

with

crosswalk as (
    select * from {{ ref('patient_crosswalk') }}
),

anchors as (
    select * from {{ ref('patient_anchors') }}
),

events as (
    select * from {{ ref('int_patient_events_unioned') }}
),

last_events as (
    select patient_id, max(last_event_at) as last_event_at
    from events
    group by patient_id
),

identities as (
    select * from {{ ref('int_patient_identities_resolved') }}
),

registry as (
    select * from {{ ref('stg_ehr__patients') }}
),

fhir_patients as (
    select * from {{ ref('stg_fhir__patients') }}
),

-- The registry first; FHIR Patients (the latest first) for patients it does not know.
demographics as (
    select
        patient_id,
        'ehr_patients' as demographics_source,
        1 as preference,
        landed_at as recorded_at,
        sex,
        birth_date,
        death_date,
        city,
        state,
        zip_code
    from registry
    union all
    select
        identities.patient_id,
        'fhir',
        2,
        fhir_patients.source_updated_at,
        fhir_patients.sex,
        fhir_patients.birth_date,
        fhir_patients.death_date,
        fhir_patients.city,
        fhir_patients.state,
        fhir_patients.zip_code
    from fhir_patients
    inner join identities
        on identities.source_name = 'fhir'
        and fhir_patients.fhir_patient_reference = identities.source_patient_reference
),

preferred_demographics as (
    select distinct on (patient_id) *
    from demographics
    order by patient_id, preference, recorded_at desc
),

keyed as (
    select
        crosswalk.patient_id,
        crosswalk.patient_key,
        anchors.anchor_at,
        anchors.hour_anchor_at,
        -- the anchor counts as an event: the age at it is published (age_at_first_event), and an
        -- anchor set from a registration can come after every dated event
        {{ age_in_years('preferred_demographics.birth_date',
            "(greatest(last_events.last_event_at, anchors.anchor_at) at time zone 'UTC')") }}
            as age_at_last_event,
        preferred_demographics.demographics_source,
        preferred_demographics.sex,
        preferred_demographics.birth_date,
        preferred_demographics.death_date,
        preferred_demographics.city,
        preferred_demographics.state,
        preferred_demographics.zip_code
    from crosswalk
    left join anchors
        on crosswalk.patient_id = anchors.patient_id
    left join preferred_demographics
        on crosswalk.patient_id = preferred_demographics.patient_id
    left join last_events
        on crosswalk.patient_id = last_events.patient_id
)

select * from keyed
