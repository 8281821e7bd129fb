-- Readings whose patient has no key or no anchor yet: they wait in staging, unpublished, until a
-- source that registers patients (the registry, an encounter, a claim, a trial, FHIR) names them.
-- A warning, with each waiting reading's file and line, never its patient.
{{ config(severity='warn') }}

with

readings as (
    select * from {{ ref('stg_vitals__readings') }}
),

patients as (
    select * from {{ ref('int_patients_keyed') }}
    where anchor_at is not null
)

select readings.source_file_key, readings.source_record_position
from readings
where not exists (
    select 1 from patients where patients.patient_id = readings.patient_id
)
