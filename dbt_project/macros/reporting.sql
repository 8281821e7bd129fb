{#- Rules the reporting marts share. -#}

{#-
    The small-cell rule (CMS cell-size policy: no count of 1 to 10 of patients, encounters,
    claims... is published, nor a figure one could be derived from) is the warehouse's, in SQL
    (schema disclosure, warehouse/migrations/0008_small_cells.sql), shared with what Python
    renders (common/small_cells.py). var min_cell_size (11) is the smallest count shown.
-#}

{#-
    A count as it may be published: null when small, or when `hidden_with` (a boolean: the count it
    is at most is hidden, as a cell's patients are at most its encounters); 0 and min_cell_size or
    more are shown.
-#}
{% macro suppressed_count(count_expression, hidden_with='false') -%}
    case
        when {{ hidden_with }} or {{ is_suppressed(count_expression) }} then null
        else {{ count_expression }}
    end
{%- endmacro %}

{#- Whether a count is small: hidden by suppressed_count. -#}
{% macro is_suppressed(count_expression) -%}
    disclosure.is_small({{ count_expression }}, {{ var('min_cell_size') }})
{%- endmacro %}

{#-
    Whether a row's count is hidden among the rows of a query whose counts add up to a total a
    reader can know: the small ones, and one more beside them where they would give themselves
    away (complementary suppression). `order_by` orders the rows uniquely (their grain). A window
    expression: the rule sees every row's count in that order, and each row reads its own place.
-#}
{% macro hidden_in_group(count_expression, order_by) -%}
    (disclosure.hidden_cells(
        array_agg({{ count_expression }}) over (
            order by {{ order_by }} rows between unbounded preceding and unbounded following
        ),
        null,
        true,
        {{ var('min_cell_size') }}
    ))[row_number() over (order by {{ order_by }})]
{%- endmacro %}

{#-
    Whether a ten-digit NPI's last digit is its check digit: the Luhn algorithm over '80840' and
    the first nine digits, as CMS defines it (the prefix contributes 24).
-#}
{% macro npi_has_valid_check_digit(npi) -%}
    coalesce(
        {{ npi }} ~ '^[0-9]{10}$'
        and (
            select (10 - (24 + sum(
                case
                    when (9 - position) % 2 = 0
                        then (digit * 2) / 10 + (digit * 2) % 10
                    else digit
                end
            )) % 10) % 10
            from (
                select position, substr({{ npi }}, position, 1)::integer as digit
                from generate_series(1, 9) as position
            ) as digits
        ) = substr({{ npi }}, 10, 1)::integer,
        false
    )
{%- endmacro %}
