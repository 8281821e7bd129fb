"""The quality gate: Great Expectations suites and checkpoints, and the code that runs them."""
