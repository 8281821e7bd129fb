{#- Rules the reporting marts share. -#}

{#-
    A count as it may be published: CMS's cell-size suppression policy forbids reporting a cell of
    1 to 10 (patients, encounters, claims...), so those become null; 0 and 11 or more are shown.
    var min_cell_size (11) is the smallest count shown.
-#}
{% macro suppressed_count(count_expression) -%}
    case
        when {{ count_expression }} between 1 and {{ var('min_cell_size', 11) - 1 }} then null
        else {{ count_expression }}
    end
{%- endmacro %}

{#- Whether a count is hidden by suppressed_count. -#}
{% macro is_suppressed(count_expression) -%}
    ({{ count_expression }} between 1 and {{ var('min_cell_size', 11) - 1 }})
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
