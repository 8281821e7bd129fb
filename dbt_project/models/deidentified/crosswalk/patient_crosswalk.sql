{#-
    The locked crosswalk: one random surrogate key per patient, assigned once and kept for ever.
    Only `transformer` can read it (schema crosswalk); it is never rebuilt, even on --full-refresh.
-#}
{{
    config(
        materialized='incremental',
        schema='crosswalk',
        full_refresh=false,
        on_schema_change='fail',
        post_hook=[
            "create unique index if not exists patient_crosswalk_patient_id on {{ this }} (patient_id)",
            "revoke all on {{ this }} from public",
        ],
    )
}}

with

encounters as (
    select * from {{ ref('stg_ehr__encounters') }}
),

patients as (
    select distinct patient_id from encounters
),

new_patients as (
    select patients.patient_id
    from patients
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as known
        where known.patient_id = patients.patient_id
    )
    {% endif %}
),

keyed as (
    select
        patient_id,
        gen_random_uuid() as patient_key,
        now() as assigned_at
    from new_patients
)

select * from keyed
