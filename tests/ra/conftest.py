"""Fixtures of the Rapid Assessment tests."""

from fdsn_server import fdsn_example_data, fdsn_server, fdsn_service  # noqa: F401
