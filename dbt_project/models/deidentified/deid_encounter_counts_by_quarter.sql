{#-
    Encounters and patients by ICD-10-CM chapter and calendar quarter. A quarter is finer than
    Safe Harbor lets a patient's record carry, so it is counted here, from the dates, and leaves
    this layer only as counts, never beside a patient key, suppressed from 1 to 10 (CMS cell size,
    var min_cell_size).
-#}

with

encounters as (
    select * from {{ ref('stg_ehr__encounters') }}
),

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

codes as (
    select * from {{ ref('icd10cm_codes') }}
),

blocks as (
    select * from {{ ref('icd10cm_blocks') }}
),

counted as (
    select
        extract(year from encounters.visit_date)::integer as visit_year,
        extract(quarter from encounters.visit_date)::integer as visit_quarter,
        blocks.chapter_number,
        count(*) as encounter_count,
        count(distinct patients.patient_key) as patient_count
    from encounters
    inner join patients
        on encounters.patient_id = patients.patient_id
    inner join codes
        on encounters.diagnosis_code = codes.diagnosis_code
    inner join blocks
        on codes.block_code = blocks.block_code
    group by 1, 2, 3
),

suppressed as (
    select
        visit_year,
        visit_quarter,
        chapter_number,
        {{ suppressed_count('encounter_count') }} as encounter_count,
        {{ suppressed_count('patient_count') }} as patient_count,
        {{ is_suppressed('encounter_count') }} or {{ is_suppressed('patient_count') }}
            as is_suppressed
    from counted
)

select * from suppressed
