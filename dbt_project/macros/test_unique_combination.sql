{#- Generic test: no two rows share the same values in `columns` (dbt packages are out of reach). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
