{#-
    The hospital units seen in the data: wards monitoring devices report, EHR departments.
    Incremental: a build looks only at the readings landed since its last one for new wards.
-#}
{{
    config(
        materialized='incremental',
        unique_key='facility_key',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
    )
}}

with

readings as (
    select * from {{ ref('deid_vital_readings') }}
    {% if is_incremental() %}
    where _landed_at > (select coalesce(max(_landed_at), '-infinity') from {{ this }})
    {% endif %}
),

encounters as (
    select * from {{ ref('deid_encounters') }}
),

units as (
    select hospital_name, ward_name as unit_name, 'ward' as unit_type, max(_landed_at) as _landed_at
    from readings
    where ward_name is not null
    group by 1, 2
    union all
    select null, department_name, 'department', max(_landed_at)
    from encounters
    where department_name is not null
    group by 2
),

final as (
    select
        md5(unit_type || '/' || coalesce(hospital_name, '') || '/' || unit_name) as facility_key,
        hospital_name,
        unit_name,
        unit_type,
        _landed_at
    from units
)

select * from final
