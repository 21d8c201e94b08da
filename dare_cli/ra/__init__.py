"""Command-line tools for the provenance (RA) pipelines."""
