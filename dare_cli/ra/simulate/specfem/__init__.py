"""SPECFEM3D Cartesian's files: pure writers, readers and checks.

* :mod:`.cmtsolution`: the ``CMTSOLUTION`` source file, from a QuakeML moment tensor or a
  double couple (GCMT's r/t/p moment-tensor convention, dyne·cm).
* :mod:`.stations`: the ``STATIONS`` file, from StationXML.
* :mod:`.parfile`: the ``Par_file`` and the internal mesher's ``Mesh_Par_file`` and
  interfaces (templates filled keeping their layout), the mesh description
  :class:`~.parfile.MeshSpec`, SPECFEM's stability and resolution estimates and the checks of a
  set-up (:func:`~.parfile.check_simulation`).
* :mod:`.seismograms`: SPECFEM's ASCII seismograms (``NET.STA.CHA.sem[dvap]``) as ObsPy traces.
* :mod:`.inputs`: every input file of a run, checked, then written.

Nothing here runs SPECFEM3D: the backends that do call these functions.
"""

from __future__ import annotations

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
from dare_cli.ra.simulate.specfem.inputs import MESH_PAR_TEMPLATE, write_specfem_inputs
from dare_cli.ra.simulate.specfem.parfile import (
    Material,
    MeshLayer,
    MeshResolution,
    MeshSpec,
    SpecfemConfigError,
    SpecfemFileError,
    check_simulation,
    fortran_value,
    mesh_around,
    mesh_resolution,
    read_mesh_spec,
    read_parfile,
    render_interfaces,
    render_mesh_parfile,
    render_parfile,
    stations_in_mesh,
)
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
