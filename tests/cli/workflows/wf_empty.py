"""A module without any workflow graph."""

VALUE = 1
