"""Compatibility layers that map other engines' APIs onto this engine."""
