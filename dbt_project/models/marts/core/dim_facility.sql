{#-
    The hospital units seen in the data: wards monitoring devices report, EHR departments.
    Incremental: a build looks for new wards only in the readings deid_vital_readings wrote since
    its last one (their _built_at). A unit no longer listed (seed published_vocabularies) is
    deleted after each build: the de-identified layer withholds it (macros/free_text.sql).
-#}
{{
    config(
        materialized='incremental',
        unique_key='facility_key',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        post_hook=[
            "delete from {{ this }} where case unit_type"
            " when 'ward' then {{ listed_value('unit_name', 'ward') }}"
            " when 'department' then {{ listed_value('unit_name', 'ehr_department') }} end is null"
            " or hospital_name is distinct from {{ listed_value('hospital_name', 'hospital') }}",
        ],
    )
}}

with

readings as (
    select * from {{ ref('deid_vital_readings') }}
    {% if is_incremental() %}
    where _built_at > (select coalesce(max(_built_at), '-infinity') from {{ this }})
    {% endif %}
),

encounters as (
    select * from {{ ref('deid_encounters') }}
),

units as (
    select
        hospital_name,
        ward_name as unit_name,
        'ward' as unit_type,
        max(_landed_at) as _landed_at,
        max(_built_at) as _built_at
    from readings
    where ward_name is not null
    group by 1, 2
    union all
    select null, department_name, 'department', max(_landed_at), null
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
        _landed_at,
        _built_at
    from units
)

select * from final
