"""`hcw`, the warehouse's one command line (cli/main.py), and `make run`'s demo job."""
