{#-
    Claims by billing provider: claims, patients, billed total. Counts from 1 to 10 are
    suppressed (CMS cell-size policy), and with them the total they would let one work back to.
    Version 2 has no service year: a provider's yearly totals are sums of the claim amounts
    analysts see, and the claims that add up to one year's total would be dated by it, with their
    patients' other events (their offsets).
-#}

with

claims as (
    select * from {{ ref('fct_claims') }}
),

providers as (
    select * from {{ ref('dim_provider') }}
),

by_provider as (
    select
        billing_provider_npi,
        count(*) as claim_count,
        count(distinct patient_key) as patient_count,
        sum(total_amount) as total_billed
    from claims
    group by billing_provider_npi
),

final as (
    select
        by_provider.billing_provider_npi,
        providers.provider_name,
        providers.has_valid_npi,
        {{ suppressed_count('by_provider.claim_count') }} as claim_count,
        {{ suppressed_count('by_provider.patient_count') }} as patient_count,
        case
            when not ({{ is_suppressed('by_provider.claim_count') }}
                or {{ is_suppressed('by_provider.patient_count') }})
                then by_provider.total_billed
        end as total_billed,
        {{ is_suppressed('by_provider.claim_count') }}
            or {{ is_suppressed('by_provider.patient_count') }} as is_suppressed
    from by_provider
    left join providers
        on by_provider.billing_provider_npi = providers.npi
)

select * from final
