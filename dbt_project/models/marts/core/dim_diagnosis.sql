{#- Every ICD-10-CM code with its category, block, chapter and billable flag (seeds icd10cm_*). -#}

with

codes as (
    select * from {{ ref('icd10cm_codes') }}
),

blocks as (
    select * from {{ ref('icd10cm_blocks') }}
),

chapters as (
    select * from {{ ref('icd10cm_chapters') }}
),

final as (
    select
        codes.diagnosis_code,
        codes.diagnosis_description,
        codes.is_billable,
        left(codes.diagnosis_code, 3) as category_code,
        codes.block_code,
        blocks.block_description,
        blocks.chapter_number,
        chapters.chapter_description
    from codes
    inner join blocks
        on codes.block_code = blocks.block_code
    inner join chapters
        on blocks.chapter_number = chapters.chapter_number
)

select * from final
