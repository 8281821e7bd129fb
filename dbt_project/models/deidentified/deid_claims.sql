{#-
    Claims without their patient: surrogate claim and patient keys, the service date as whole days
    from the patient's anchor (no calendar year: deid_encounters says why); the policy and group
    numbers dropped.
-#}

with

claims as (
    select * from {{ ref('stg_claims__claims') }}
),

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

keys as (
    select * from {{ ref('identifier_crosswalk') }}
    where identifier_type = 'claim'
),

deidentified as (
    select
        keys.surrogate_key as claim_key,
        patients.patient_key,
        {{ days_since_anchor('claims.service_date', 'patients.anchor_at') }} as service_day_offset,
        {{ limited_data_set_only('claims.service_date', 'date') }} as service_date,
        {{ formatted_identifier('claims.provider_id', 'provider_id') }} as provider_id,
        claims.billing_provider_npi,
        claims.rendering_provider_npi,
        claims.total_amount,
        {{ listed_value('claims.coverage_type', 'coverage_type') }} as coverage_type,
        claims.landed_at as _landed_at
    from claims
    inner join patients
        on claims.patient_id = patients.patient_id
    inner join keys
        on claims.claim_id = keys.identifier
)

select * from deidentified
