"""What the DAG files in airflow/dags/ share: settings, assets, notifications, the landing watch."""
