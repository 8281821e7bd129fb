{#- Every version of every provider's attributes, from the provider snapshot (SCD type 2). -#}

with

versions as (
    select * from {{ ref('provider_snapshot') }}
),

final as (
    select
        dbt_scd_id as provider_version_key,
        npi,
        has_valid_npi,
        is_billing_provider,
        is_rendering_provider,
        {{ formatted_identifier('fhir_practitioner_id', 'fhir_practitioner_id') }}
            as fhir_practitioner_id,
        provider_name,
        dbt_valid_from as valid_from,
        dbt_valid_to as valid_to,
        dbt_valid_to is null as is_current
    from versions
)

select * from final
