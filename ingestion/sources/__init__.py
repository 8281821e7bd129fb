"""One module per source: each knows its files or API and nothing else."""
