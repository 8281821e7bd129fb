"""Demo data: realistic source files, defects included, for the demo and the tests."""
