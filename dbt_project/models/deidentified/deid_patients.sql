{#-
    One row per patient, nothing that names or locates them (policy: var deid_policy).
    Safe Harbor: birth and death keep their year (the birth year is withheld when it would show
    an age of 90 or more), death is also given in whole days from the patient's anchor, ages
    over 89 are one '90+' category, the ZIP code keeps three digits ('000' in restricted areas)
    and the town is dropped. A limited data set adds the dates, the town and the five-digit ZIP.
-#}

with

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

deidentified as (
    select
        patient_key,
        sex,
        {{ age_category('birth_date', 'coalesce((anchor_at at time zone \'UTC\')::date, ' ~ deid_as_of() ~ ')') }}
            as age_at_first_event,
        case
            when {{ age_in_years('birth_date', deid_as_of()) }} >= 90 then null
            else extract(year from birth_date)::integer
        end as birth_year,
        death_date is not null as is_deceased,
        extract(year from death_date)::integer as death_year,
        {{ days_since_anchor('death_date', 'anchor_at') }} as death_day_offset,
        state,
        {{ zip3('zip_code') }} as zip3,
        {{ limited_data_set_only('birth_date', 'date') }} as birth_date,
        {{ limited_data_set_only('death_date', 'date') }} as death_date,
        {{ limited_data_set_only('city', 'text') }} as city,
        {{ limited_data_set_only('zip_code', 'text') }} as zip_code
    from patients
)

select * from deidentified
