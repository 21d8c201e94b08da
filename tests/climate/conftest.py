"""Fixtures of the climate tests."""

from webdav_server import webdav, webdav_credentials  # noqa: F401
