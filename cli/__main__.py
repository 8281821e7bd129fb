"""`python -m cli ...`: the `hcw` command line, where the venv's scripts are not on PATH."""

from cli.main import main

main()
