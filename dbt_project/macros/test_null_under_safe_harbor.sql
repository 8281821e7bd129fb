{#-
    Generic test: under Safe Harbor the column holds no value (it is a date, a town or a five-digit
    ZIP only a limited data set may carry). Passes trivially under limited_data_set.
-#}
{% test null_under_safe_harbor(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
    and '{{ deid_policy() }}' = 'safe_harbor'
{% endtest %}
