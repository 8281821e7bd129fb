"""The warehouse: which PostgreSQL server, its roles and schemas, and how a build is published.

Everything that connects to the warehouse (dlt, dbt's profile, Great Expectations, Airflow's
connections) takes its connection from `warehouse.connection`.
"""
