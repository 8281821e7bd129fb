{#- One row per claim (its latest version), de-identified; line count and billed total. -#}

with

claims as (
    select * from {{ ref('deid_claims') }}
),

lines as (
    select * from {{ ref('deid_claim_lines') }}
),

line_totals as (
    select claim_key, count(*) as line_count, sum(units) as units_billed
    from lines
    group by claim_key
),

final as (
    select
        claims.claim_key,
        claims.patient_key,
        claims.service_day_offset,
        claims.service_date,
        claims.provider_id,
        claims.billing_provider_npi,
        claims.rendering_provider_npi,
        claims.coverage_type,
        claims.total_amount,
        coalesce(line_totals.line_count, 0) as line_count,
        coalesce(line_totals.units_billed, 0) as units_billed
    from claims
    left join line_totals
        on claims.claim_key = line_totals.claim_key
)

select * from final
