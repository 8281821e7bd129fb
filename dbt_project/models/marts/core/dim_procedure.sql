{#-
    Every procedure code billed, with its code system and section. CPT descriptors are the AMA's
    copyright: a code is described by its section only (seed procedure_code_sections).
-#}

with

lines as (
    select * from {{ ref('deid_claim_lines') }}
),

sections as (
    select * from {{ ref('procedure_code_sections') }}
),

codes as (
    select distinct procedure_code
    from lines
    where procedure_code is not null
),

classified as (
    select
        procedure_code,
        case
            when procedure_code ~ '^[0-9]{5}$' then 'CPT'
            when procedure_code ~ '^[0-9]{4}F$' then 'CPT Category II'
            when procedure_code ~ '^[0-9]{4}T$' then 'CPT Category III'
            when procedure_code ~ '^[0-9]{4}U$' then 'CPT PLA'
            when procedure_code ~ '^[0-9]{4}M$' then 'CPT MAAA'
            when procedure_code ~ '^[A-V][0-9]{4}$' then 'HCPCS'
            else 'unknown'
        end as code_system
    from codes
),

final as (
    select
        classified.procedure_code,
        classified.code_system,
        coalesce(sections.section, 'Unknown section') as procedure_section
    from classified
    left join sections
        on classified.code_system = sections.code_system
        and classified.procedure_code between sections.range_start and sections.range_end
)

select * from final
