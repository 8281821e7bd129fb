{#-
    Random surrogate keys for the monitoring devices (device ids are HIPAA identifiers, 45 CFR
    164.514(b)(2)(i)(M)). Fed by the device feed alone, so that readings landing every few seconds
    rebuild the vitals models and nothing else. Assigned once, kept for ever, never derived from
    the id; readable by `transformer` only.

    A warehouse that kept its device keys in identifier_crosswalk (before this model) keeps them:
    the first build carries them over.
-#}
{{
    config(
        indexes=[
            {'columns': ['device_id'], 'unique': True},
        ],
    )
}}

{%- set keys_kept_before = none -%}
{%- if execute and not is_incremental() -%}
    {%- set keys_kept_before = adapter.get_relation(this.database, this.schema, 'identifier_crosswalk') -%}
{%- endif %}

with recursive

-- Each device once, found by walking the readings' (device_id, measured_at) index from one device
-- to the next: a few hundred index probes where a distinct would read every reading.
devices_seen as (
    (
        select device_id
        from {{ ref('stg_vitals__readings') }}
        order by device_id
        limit 1
    )
    union all
    select (
        select readings.device_id
        from {{ ref('stg_vitals__readings') }} as readings
        where readings.device_id > devices_seen.device_id
        order by readings.device_id
        limit 1
    )
    from devices_seen
    where devices_seen.device_id is not null
),

{% if keys_kept_before %}
carried_over as (
    select identifier as device_id, surrogate_key as device_key, assigned_at
    from {{ keys_kept_before }}
    where identifier_type = 'device'
),
{% else %}
carried_over as (
    select null::text as device_id, null::uuid as device_key, null::timestamptz as assigned_at
    where false
),
{% endif %}

new_devices as (
    select devices_seen.device_id
    from devices_seen
    where devices_seen.device_id is not null
        and not exists (
            select 1 from carried_over where carried_over.device_id = devices_seen.device_id
        )
    {% if is_incremental() %}
        and not exists (
            select 1 from {{ this }} as known
            where known.device_id = devices_seen.device_id
        )
    {% endif %}
),

keyed as (
    select device_id, device_key, assigned_at
    from carried_over
    union all
    select
        device_id,
        gen_random_uuid() as device_key,
        now() as assigned_at
    from new_devices
)

select * from keyed
