with

source as (
    select * from {{ source_or_empty('claims', 'claims') }}
),

file_ledger as (
    {{ validated_files() }}
),

renamed as (
    select
        source.claim_id::text as claim_id,
        {{ normalise_patient_id('source.patient_id') }} as patient_id,
        source.provider_id::text as provider_id,
        source.billing_provider_npi::text as billing_provider_npi,
        source.rendering_provider_npi::text as rendering_provider_npi,
        source.service_date::date as service_date,
        source.total_amount::numeric(12, 2) as total_amount,
        source.insurance_info__policy_number::text as policy_number,
        source.insurance_info__group_number::text as group_number,
        source.insurance_info__coverage_type::text as coverage_type,
        source.type_of_bill::text as type_of_bill,
        source.admission_date::date as admission_date,
        source.discharge_date::date as discharge_date,
        source.discharge_status::text as discharge_status,
        source._file_key as source_file_key,
        source._record_position as source_record_position,
        file_ledger.recorded_at as landed_at
    from source
    inner join file_ledger
        on source._file_key = file_ledger.file_key
),

-- A claim sent again in a later file (a resubmission) replaces the earlier one.
ranked as (
    select
        renamed.*,
        row_number() over (
            partition by claim_id
            order by landed_at desc, source_file_key desc, source_record_position desc
        ) as version_rank
    from renamed
)

select
    claim_id,
    patient_id,
    provider_id,
    billing_provider_npi,
    rendering_provider_npi,
    service_date,
    total_amount,
    policy_number,
    group_number,
    coverage_type,
    type_of_bill,
    admission_date,
    discharge_date,
    discharge_status,
    source_file_key,
    source_record_position,
    landed_at
from ranked
where version_rank = 1
