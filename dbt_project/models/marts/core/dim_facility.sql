{#- The hospital units seen in the data: wards monitoring devices report, EHR departments. -#}

with

readings as (
    select * from {{ ref('deid_vital_readings') }}
),

encounters as (
    select * from {{ ref('deid_encounters') }}
),

units as (
    select distinct hospital_name, ward_name as unit_name, 'ward' as unit_type
    from readings
    where ward_name is not null
    union
    select distinct null, department_name, 'department'
    from encounters
    where department_name is not null
),

final as (
    select
        md5(unit_type || '/' || coalesce(hospital_name, '') || '/' || unit_name) as facility_key,
        hospital_name,
        unit_name,
        unit_type
    from units
)

select * from final
