-- The hourly roll-up counts every reading of fct_vital_signs once, whatever the builds' order.
with

readings as (
    select count(*) as readings from {{ ref('fct_vital_signs') }}
),

hours as (
    select coalesce(sum(reading_count), 0) as readings from {{ ref('fct_vital_signs_hourly') }}
)

select readings.readings as in_fact, hours.readings as in_hours
from readings
cross join hours
where readings.readings <> hours.readings
