{#-
    One row per patient, nothing that names or locates them (policy: var deid_policy).
    Safe Harbor: no calendar year (a birth or death year beside ages and offsets would place the
    patient's events: docs/deidentification.md); death in whole days from the patient's anchor;
    the age at the first event, '90+' for a patient 90 or over at any event; the ZIP code keeps three digits
    ('000' in restricted areas) and the town is dropped. A limited data set adds the dates, the
    town and the five-digit ZIP.
-#}

{#- a patient with no event yet: their age on January 1 of the build's year, which changes on a
    day that says nothing of their birthday -#}
{%- set january_first = "date_trunc('year', " ~ deid_as_of() ~ ")::date" %}

with

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

deidentified as (
    select
        patient_key,
        {{ listed_value('sex', 'administrative_gender') }} as sex,
        {{ age_category(
            'birth_date',
            'coalesce((anchor_at at time zone \'UTC\')::date, ' ~ january_first ~ ')',
            'coalesce(age_at_last_event, ' ~ age_in_years('birth_date', january_first) ~ ')'
        ) }} as age_at_first_event,
        death_date is not null as is_deceased,
        {{ days_since_anchor('death_date', 'anchor_at') }} as death_day_offset,
        {{ listed_value('state', 'us_state') }} as state,
        {{ zip3('zip_code') }} as zip3,
        {{ limited_data_set_only('birth_date', 'date') }} as birth_date,
        {{ limited_data_set_only('death_date', 'date') }} as death_date,
        {{ limited_data_set_only('city', 'text') }} as city,
        {{ limited_data_set_only('zip_code', 'text') }} as zip_code
    from patients
)

select * from deidentified
