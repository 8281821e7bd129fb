{#-
    Random surrogate keys for every other identifier the de-identified layer must replace: source
    record ids (a claim number is an account number, a FHIR reference (server/type/id: an id is
    unique only within its server) or an EHR row position points back at the source record). Devices have their own crosswalk (device_crosswalk), so that the
    device feed rebuilds nothing else. Assigned once, kept for ever, never derived from the
    identifier; readable by `transformer` only.
-#}
{{
    config(
        indexes=[
            {'columns': ['identifier_type', 'identifier'], 'unique': True},
        ],
    )
}}

with

encounters as (
    select * from {{ ref('stg_ehr__encounters') }}
),

claims as (
    select * from {{ ref('stg_claims__claims') }}
),

trials as (
    select * from {{ ref('stg_research__clinical_trials') }}
),

fhir_encounters as (
    select * from {{ ref('stg_fhir__encounters') }}
),

fhir_observations as (
    select * from {{ ref('stg_fhir__observations') }}
),

identifiers as (
    select 'ehr_encounter' as identifier_type, encounter_id as identifier from encounters
    union
    select 'claim', claim_id from claims
    union
    select 'trial_participation', trial_participation_id from trials
    union
    select 'fhir_encounter', fhir_encounter_reference from fhir_encounters
    union
    select 'fhir_observation', fhir_observation_reference from fhir_observations
),

new_identifiers as (
    select identifiers.identifier_type, identifiers.identifier
    from identifiers
    where identifiers.identifier is not null
    {% if is_incremental() %}
        and not exists (
            select 1 from {{ this }} as known
            where known.identifier_type = identifiers.identifier_type
                and known.identifier = identifiers.identifier
        )
    {% endif %}
),

keyed as (
    select
        identifier_type,
        identifier,
        gen_random_uuid() as surrogate_key,
        now() as assigned_at
    from new_identifiers
)

select * from keyed
