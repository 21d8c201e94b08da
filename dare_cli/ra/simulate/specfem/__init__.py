"""SPECFEM3D Cartesian's files: pure writers, readers and checks.

Modules, each importing only those above it (no import cycle):

* :mod:`.errors`: :class:`SpecfemFileError` (a malformed file, with its line) and
  :class:`SpecfemConfigError` (a wrong set-up, saying what to change).
* :mod:`.utm`: longitude/latitude to UTM as SPECFEM3D projects them.
* :mod:`.parfile`: ``KEY = value`` parameter files as text: read them, fill templates keeping
  their layout, Fortran literals.
* :mod:`.mesh`: the internal mesher's layered box :class:`MeshSpec` (materials, layers, NEX,
  NPROC, doublings), its ``Mesh_Par_file`` and interfaces, :func:`mesh_around`.
* :mod:`.resolution`: SPECFEM's stability (suggested time step) and resolution (shortest
  period) estimates of a mesh, :func:`mesh_resolution`.
* :mod:`.cmtsolution`: the ``CMTSOLUTION`` source file, from a QuakeML moment tensor or a
  double couple (GCMT's r/t/p moment-tensor convention, dyne·cm).
* :mod:`.stations`: the ``STATIONS`` file, from StationXML.
* :mod:`.checks`: the checks of a set-up (:func:`check_simulation`).
* :mod:`.seismograms`: SPECFEM's ASCII seismograms (``NET.STA.CHA.sem[dvap]``) as ObsPy traces.
* :mod:`.inputs`: every input file of a run, checked, then written.

Nothing here runs SPECFEM3D: the backends that do call these functions.
"""

from __future__ import annotations

from dare_cli.ra.simulate.specfem.checks import check_simulation, stations_in_mesh
from dare_cli.ra.simulate.specfem.cmtsolution import (
    CMTSolution,
    cmtsolution_from_double_couple,
    cmtsolution_from_event,
    format_cmtsolution,
    read_cmtsolution,
    read_cmtsolutions,
    simulation_origin_time,
    write_cmtsolution,
)
from dare_cli.ra.simulate.specfem.errors import SpecfemConfigError, SpecfemFileError
from dare_cli.ra.simulate.specfem.inputs import MESH_PAR_TEMPLATE, write_specfem_inputs
from dare_cli.ra.simulate.specfem.mesh import (
    Material,
    MeshLayer,
    MeshSpec,
    mesh_around,
    read_mesh_spec,
    render_interfaces,
    render_mesh_parfile,
)
from dare_cli.ra.simulate.specfem.parfile import fortran_value, read_parfile, render_parfile
from dare_cli.ra.simulate.specfem.resolution import MeshResolution, mesh_resolution
from dare_cli.ra.simulate.specfem.seismograms import read_seismogram, read_seismograms
from dare_cli.ra.simulate.specfem.stations import (
    StationLine,
    format_stations,
    read_stations,
    stations_from_inventory,
    write_stations,
)

__all__ = [
    "MESH_PAR_TEMPLATE",
    "CMTSolution",
    "Material",
    "MeshLayer",
    "MeshResolution",
    "MeshSpec",
    "SpecfemConfigError",
    "SpecfemFileError",
    "StationLine",
    "check_simulation",
    "cmtsolution_from_double_couple",
    "cmtsolution_from_event",
    "format_cmtsolution",
    "format_stations",
    "fortran_value",
    "mesh_around",
    "mesh_resolution",
    "read_cmtsolution",
    "read_cmtsolutions",
    "read_mesh_spec",
    "read_parfile",
    "read_seismogram",
    "read_seismograms",
    "read_stations",
    "render_interfaces",
    "render_mesh_parfile",
    "render_parfile",
    "simulation_origin_time",
    "stations_from_inventory",
    "stations_in_mesh",
    "write_cmtsolution",
    "write_specfem_inputs",
    "write_stations",
]
