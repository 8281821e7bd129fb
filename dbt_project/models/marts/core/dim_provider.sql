{#-
    One row per provider NPI seen on a claim or in the FHIR directory, with whether its check
    digit is right. Providers are not patients: their NPIs and names are kept; an NPI of another
    shape than ten digits is no NPI and is left out, and a FHIR practitioner id is published only
    in its configured shape (macros/free_text.sql).
-#}

with

claims as (
    select * from {{ ref('deid_claims') }}
),

-- One Practitioner per NPI: several FHIR servers (facilities) may each hold the clinician; the
-- latest updated directory entry speaks for them. A copy contained in an encounter (whose update
-- time is the encounter's) speaks only for a clinician no directory holds.
practitioners as (
    select distinct on (npi) *
    from {{ ref('stg_fhir__practitioners') }}
    where npi ~ '^[0-9]{10}$'
    order by npi, container_reference is not null, source_updated_at desc, fhir_server
),

claim_npis as (
    select billing_provider_npi as npi, true as is_billing, false as is_rendering from claims
    union all
    select rendering_provider_npi, false, true from claims
),

npis as (
    select npi, bool_or(is_billing) as is_billing, bool_or(is_rendering) as is_rendering
    from claim_npis
    where npi is not null
    group by npi
    union all
    select npi, false, false
    from practitioners
    where npi is not null
        and npi not in (select npi from claim_npis where npi is not null)
),

providers as (
    select
        npis.npi,
        bool_or(npis.is_billing) as is_billing_provider,
        bool_or(npis.is_rendering) as is_rendering_provider
    from npis
    group by npis.npi
),

final as (
    select
        providers.npi,
        {{ npi_has_valid_check_digit('providers.npi') }} as has_valid_npi,
        providers.is_billing_provider,
        providers.is_rendering_provider,
        {{ formatted_identifier('practitioners.fhir_practitioner_id', 'fhir_practitioner_id') }}
            as fhir_practitioner_id,
        nullif(concat_ws(' ', practitioners.given_name, practitioners.family_name), '')
            as provider_name
    from providers
    left join practitioners
        on providers.npi = practitioners.npi
)

select * from final
