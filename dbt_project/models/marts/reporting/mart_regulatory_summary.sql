{#-
    Encounters and patients by quarter, for regulators. Counts from 1 to 10 are suppressed (CMS
    cell-size policy) in the de-identified layer, before they get here. Version 2 has no diagnosis
    chapter: deid_encounter_counts_by_quarter says why.
-#}

with

counts as (
    select * from {{ ref('deid_encounter_counts_by_quarter') }}
),

final as (
    select
        visit_year,
        visit_quarter,
        visit_year::text || '-Q' || visit_quarter::text as year_quarter,
        encounter_count,
        patient_count,
        is_suppressed
    from counts
)

select * from final
