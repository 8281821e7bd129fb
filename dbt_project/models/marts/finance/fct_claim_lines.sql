{#- One row per service line of the claims in fct_claims; the code's section is in dim_procedure. -#}

with

lines as (
    select * from {{ ref('deid_claim_lines') }}
),

final as (
    select
        claim_key,
        line_number,
        procedure_code,
        units,
        amount
    from lines
)

select * from final
