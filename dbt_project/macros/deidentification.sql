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

{#- Whole hours from the patient's anchor to a moment, rounded down: 0 within the first hour. -#}
{% macro hours_since_anchor(timestamp_expression, anchor_at) -%}
    floor(extract(epoch from ({{ timestamp_expression }} - {{ anchor_at }})) / 3600)::integer
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

{#- An age as published: the whole years up to 89, then one category, '90+' (164.514(b)(2)(i)(C)). -#}
{% macro age_category(birth_date, on_date) -%}
    case
        when {{ birth_date }} is null or {{ on_date }} is null then null
        when {{ age_in_years(birth_date, on_date) }} >= 90 then '90+'
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
    Pre-hooks that make the reading keys of a warehouse built before they were random random
    (deid_vital_readings, then fct_vital_signs): a hash of keys and a seconds offset gave the
    reading's time to the second. Each old key becomes the reading's _reading_ref (the same hash,
    never published) and the reading takes a random key; fct_vital_signs takes the same new key.
    Once, when the table still lacks _reading_ref or holds a hash (32 characters; a uuid has 36).
-#}
{% macro randomise_hashed_reading_keys() -%}
    do $$
    begin
        if to_regclass('{{ this }}') is null then  -- its first build
            return;
        end if;
        {% if this.name == 'deid_vital_readings' %}
        if exists (
            select 1 from information_schema.columns
            where table_schema = '{{ this.schema }}' and table_name = '{{ this.identifier }}'
                and column_name = '_reading_ref'
        ) then
            return;
        end if;
        alter table {{ this }} add column _reading_ref text;
        update {{ this }} set _reading_ref = reading_key, reading_key = gen_random_uuid()::text;
        create unique index on {{ this }} (_reading_ref);
        {% else %}
        if not exists (select 1 from {{ this }} where length(reading_key) = 32) then
            return;
        end if;
        update {{ this }} as fact
        set reading_key = readings.reading_key
        from {{ ref('deid_vital_readings') }} as readings
        where readings._reading_ref = fact.reading_key;
        {% endif %}
    end
    $$
{%- endmacro %}
