{#-
    The de-identification policy's building blocks (docs/deidentification.md). Every deidentified
    model uses these, so each rule of 45 CFR 164.514 is written once.
-#}

{#- The policy of this build, `safe_harbor` or `limited_data_set` (var deid_policy). -#}
{% macro deid_policy() -%}
    {%- set policy = var('deid_policy', 'safe_harbor') -%}
    {%- if policy not in ('safe_harbor', 'limited_data_set') -%}
        {{ exceptions.raise_compiler_error(
            "var deid_policy is '" ~ policy ~ "': use safe_harbor or limited_data_set"
        ) }}
    {%- endif -%}
    {{- policy -}}
{%- endmacro %}

{#-
    `expression` under a limited data set (dates, five-digit ZIPs, towns); null of `data_type`
    under Safe Harbor. The column exists under both policies, so marts keep one contract.
-#}
{% macro limited_data_set_only(expression, data_type) -%}
    {%- if deid_policy() == 'limited_data_set' -%}
        {{ expression }}
    {%- else -%}
        null::{{ data_type }}
    {%- endif -%}
{%- endmacro %}

{#- Whole days from the patient's anchor (their first event, in UTC) to a date: 0 on that day. -#}
{% macro days_since_anchor(date_expression, anchor_at) -%}
    ({{ date_expression }}::date - ({{ anchor_at }} at time zone 'UTC')::date)
{%- endmacro %}

{#-
    Whole hours from the patient's hour anchor to a moment, rounded down. The hour anchor is the
    anchor less a random part of a day (crosswalk patient_anchors.hour_anchor_at): an anchor set
    from a visit date falls at midnight, and hours from it, taken modulo 24, would be the time of
    day.
-#}
{% macro hours_since_anchor(timestamp_expression, hour_anchor_at) -%}
    floor(extract(epoch from ({{ timestamp_expression }} - {{ hour_anchor_at }})) / 3600)::integer
{%- endmacro %}

{#- The day ages are reckoned on when there is no event: var deid_as_of, else the build's day. -#}
{% macro deid_as_of() -%}
    {%- if var('deid_as_of', none) -%}
        '{{ var("deid_as_of") }}'::date
    {%- else -%}
        current_date
    {%- endif -%}
{%- endmacro %}

{#- Age in whole years on a day. -#}
{% macro age_in_years(birth_date, on_date) -%}
    extract(year from age({{ on_date }}::date, {{ birth_date }}::date))::integer
{%- endmacro %}

{#-
    An age as published: the whole years on a day, or '90+' on every row of a patient who was 90
    or over at any of their events (164.514(b)(2)(i)(C): ages over 89 and the elements of dates
    indicative of such an age), so that neither an earlier age nor the flip from 89 to 90+
    between two events gives their age or birthday. `age_at_last_event`: the patient's age at
    their last dated event (int_patients_keyed). The rule reads nothing but the patient's own
    dates: a rule on the build's year (born 90 or more years before it) would make every numeric
    age a calendar fact, an age of 89 placing the event in the build's year and, by the offsets,
    every other event of the patient (tests/privacy/test_adversary.py).
-#}
{% macro age_category(birth_date, on_date, age_at_last_event) -%}
    case
        when {{ birth_date }} is null or {{ on_date }} is null then null
        when {{ age_at_last_event }} >= 90 then '90+'
        else {{ age_in_years(birth_date, on_date) }}::text
    end
{%- endmacro %}

{#-
    The first three digits of a ZIP code; '000' for the areas of 20,000 people or fewer (seed
    restricted_zip3); null when the ZIP is not one.
-#}
{% macro zip3(zip_code) -%}
    case
        when {{ zip_code }} !~ '^[0-9]{5}' then null
        when left({{ zip_code }}, 3) in (select zip3 from {{ ref('restricted_zip3') }}) then '000'
        else left({{ zip_code }}, 3)
    end
{%- endmacro %}


{#-
    Pre-hook of patient_anchors: anchors set before hours counted from an hour anchor get one, a
    random part of a day before the anchor, drawn once (the column's first build adds it).
-#}
{% macro add_hour_anchors() -%}
    do $$
    begin
        if to_regclass('{{ this }}') is null then  -- its first build
            return;
        end if;
        if not exists (
            select 1 from information_schema.columns
            where table_schema = '{{ this.schema }}' and table_name = '{{ this.identifier }}'
                and column_name = 'hour_anchor_at'
        ) then
            alter table {{ this }} add column hour_anchor_at timestamptz;
        end if;
        update {{ this }} set hour_anchor_at = anchor_at - random() * interval '1 day'
        where hour_anchor_at is null;
    end
    $$
{%- endmacro %}
