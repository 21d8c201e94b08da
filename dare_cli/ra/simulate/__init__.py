"""Synthetic seismograms: the embedded analytical solver (and SPECFEM3D, later)."""
