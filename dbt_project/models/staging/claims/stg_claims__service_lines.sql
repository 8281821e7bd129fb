with

lines as (
    select * from {{ source_or_empty('claims', 'claim_service_lines') }}
),

claims as (
    select * from {{ ref('stg_claims__claims') }}
),

renamed as (
    select
        claims.claim_id,
        lines._line_number as line_number,
        lines.procedure_code::text as procedure_code,
        lines.description::text as procedure_description,
        lines.amount::numeric(12, 2) as amount,
        lines.units::integer as units
    from lines
    -- only the lines of the claim version that staging kept
    inner join claims
        on lines._file_key = claims.source_file_key
        and lines._record_position = claims.source_record_position
)

select * from renamed
