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

-- the providers' claim counts add up to the claims anyone counts in fct_claims: a provider's
-- count hidden alone is hidden with the smallest other (complementary suppression); patients do
-- not add up (one patient, several providers)
decided as (
    select
        by_provider.*,
        {{ hidden_in_group('by_provider.claim_count', 'by_provider.billing_provider_npi') }}
            as claim_count_hidden
    from by_provider
),

final as (
    select
        decided.billing_provider_npi,
        providers.provider_name,
        providers.has_valid_npi,
        case when decided.claim_count_hidden then null else decided.claim_count end
            as claim_count,
        -- a provider's patients are at most its claims: hidden with them
        {{ suppressed_count('decided.patient_count', 'decided.claim_count_hidden') }}
            as patient_count,
        case
            when not (decided.claim_count_hidden or {{ is_suppressed('decided.patient_count') }})
                then decided.total_billed
        end as total_billed,
        decided.claim_count_hidden or {{ is_suppressed('decided.patient_count') }}
            as is_suppressed
    from decided
    left join providers
        on decided.billing_provider_npi = providers.npi
)

select * from final
