"""Command-line tools for the climate pipelines."""
