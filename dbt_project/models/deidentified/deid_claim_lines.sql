{#-
    The service lines of the de-identified claims. The payer's description of a service is free
    text and is not published: dim_procedure describes a code by its section (v1 published the
    text: docs/published_versions.md).
-#}

with

lines as (
    select * from {{ ref('stg_claims__service_lines') }}
),

keys as (
    select * from {{ ref('identifier_crosswalk') }}
    where identifier_type = 'claim'
),

deidentified as (
    select
        keys.surrogate_key as claim_key,
        lines.line_number,
        lines.procedure_code,
        lines.amount,
        lines.units
    from lines
    inner join keys
        on lines.claim_id = keys.identifier
)

select * from deidentified
