"""eval_pipelines: production-grounded AI evaluation on Dagster."""
