"""pytest plugin: scenario files as tests, and fixtures (being written)."""
