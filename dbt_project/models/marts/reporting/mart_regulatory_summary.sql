{#-
    Encounters and patients by ICD-10-CM chapter and quarter, for regulators. Counts from 1 to 10
    are suppressed (CMS cell-size policy) in the de-identified layer, before they get here.
-#}

with

counts as (
    select * from {{ ref('deid_encounter_counts_by_quarter') }}
),

chapters as (
    select * from {{ ref('icd10cm_chapters') }}
),

final as (
    select
        counts.visit_year,
        counts.visit_quarter,
        counts.visit_year::text || '-Q' || counts.visit_quarter::text as year_quarter,
        counts.chapter_number,
        chapters.chapter_description,
        counts.encounter_count,
        counts.patient_count,
        counts.is_suppressed
    from counts
    inner join chapters
        on counts.chapter_number = chapters.chapter_number
)

select * from final
