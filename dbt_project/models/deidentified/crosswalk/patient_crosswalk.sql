{#-
    The locked crosswalk: one random surrogate key per resolved patient (int_patient_identities_
    resolved), assigned the first time any source mentions them and kept for ever, whichever
    source that was. A re-identification code as 45 CFR 164.514(c) allows: gen_random_uuid() is
    not derived from anything about the patient. Only `transformer` can read it (schema
    crosswalk); it is never rebuilt, even on --full-refresh.
-#}
{{
    config(
        indexes=[
            {'columns': ['patient_id'], 'unique': True},
        ],
    )
}}

with

identities as (
    select * from {{ ref('int_patient_identities_resolved') }}
),

patients as (
    select distinct patient_id from identities
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
