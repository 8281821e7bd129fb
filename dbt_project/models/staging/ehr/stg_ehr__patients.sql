with

source as (
    select * from {{ source_or_empty('ehr', 'patients') }}
),

file_ledger as (
    {{ validated_files() }}
),

renamed as (
    select
        {{ normalise_patient_id('source.patient_id') }} as patient_id,
        source.first_name::text as given_name,
        source.last_name::text as family_name,
        lower(source.sex)::text as sex,
        cast(source.birth_date as date) as birth_date,
        cast(nullif(source.death_date, '') as date) as death_date,
        source.ssn::text as ssn,
        source.street_address::text as street_address,
        source.city::text as city,
        upper(source.state)::text as state,
        left(source.zip_code, 5)::text as zip_code,
        source.phone::text as phone,
        source.email::text as email,
        source._file_key as source_file_key,
        source._record_position as source_record_position,
        file_ledger.recorded_at as landed_at
    from source
    inner join file_ledger
        on source._file_key = file_ledger.file_key
),

-- The registry is re-sent whole or in part; the latest row of a patient is their record.
ranked as (
    select
        renamed.*,
        row_number() over (
            partition by patient_id
            order by landed_at desc, source_file_key desc, source_record_position desc
        ) as version_rank
    from renamed
)

select
    patient_id,
    given_name,
    family_name,
    sex,
    birth_date,
    death_date,
    ssn,
    street_address,
    city,
    state,
    zip_code,
    phone,
    email,
    source_file_key,
    source_record_position,
    landed_at
from ranked
where version_rank = 1
