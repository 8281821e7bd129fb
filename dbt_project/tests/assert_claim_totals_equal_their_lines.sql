-- Every claim's total is the sum of its service lines (landing checks each file; this checks the
-- facts after staging kept the latest version of each claim).
with

claims as (
    select * from {{ ref('fct_claims') }}
),

lines as (
    select * from {{ ref('fct_claim_lines') }}
),

line_totals as (
    select claim_key, sum(amount) as lines_total
    from lines
    group by claim_key
)

select claims.claim_key, claims.total_amount, line_totals.lines_total
from claims
left join line_totals
    on claims.claim_key = line_totals.claim_key
where claims.total_amount is distinct from line_totals.lines_total
