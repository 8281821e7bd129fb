{#- The calendar, one row per day from 2000 to 2035. Not tied to any patient. -#}

with

days as (
    select day::date as date_day
    from generate_series('2000-01-01'::date, '2035-12-31'::date, interval '1 day') as day
),

final as (
    select
        date_day,
        extract(year from date_day)::integer as year_number,
        extract(quarter from date_day)::integer as quarter_number,
        extract(year from date_day)::text || '-Q' || extract(quarter from date_day)::text
            as year_quarter,
        extract(month from date_day)::integer as month_number,
        to_char(date_day, 'FMMonth') as month_name,
        extract(isodow from date_day)::integer as iso_day_of_week,
        extract(isodow from date_day) in (6, 7) as is_weekend
    from days
)

select * from final
