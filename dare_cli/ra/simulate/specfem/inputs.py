"""All the input files of a SPECFEM3D Cartesian run with the internal mesher, checked first.

:func:`write_specfem_inputs` renders the ``Par_file`` from a template, checks the whole set-up
(:func:`~dare_cli.ra.simulate.specfem.checks.check_simulation`) and only then writes, each file
atomically, into SPECFEM's ``DATA/`` folder::

    DATA/CMTSOLUTION
    DATA/STATIONS
    DATA/Par_file
    DATA/meshfem3D_files/Mesh_Par_file
    DATA/meshfem3D_files/interfaces.dat, interface1.dat, ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dare_cli.ra.simulate.specfem.checks import check_simulation
from dare_cli.ra.simulate.specfem.cmtsolution import CMTSolution, format_cmtsolution
from dare_cli.ra.simulate.specfem.errors import SpecfemConfigError
from dare_cli.ra.simulate.specfem.mesh import MeshSpec, render_interfaces, render_mesh_parfile
from dare_cli.ra.simulate.specfem.parfile import parse_parfile, render_parfile
from dare_cli.ra.simulate.specfem.stations import StationLine, format_stations
from engine.files import write_atomic

__all__ = ["MESHFEM_FOLDER", "MESH_PAR_TEMPLATE", "write_specfem_inputs"]

#: Folder of the internal mesher's files inside ``DATA/``.
MESHFEM_FOLDER = "meshfem3D_files"

#: A ``Mesh_Par_file`` template with the keys of SPECFEM3D Cartesian 4.x (``NREGIONS``,
#: ``CAVITY_FILE``, ``SAVE_MESH_AS_CUBIT``); :func:`write_specfem_inputs` fills in the mesh.
#: Pass the ``Mesh_Par_file`` of the SPECFEM3D version that will run if its keys differ.
MESH_PAR_TEMPLATE = """\
#-----------------------------------------------------------
# Internal mesher (xmeshfem3D) parameters, written by dare
#-----------------------------------------------------------

# mesh box: longitude/latitude in degrees (projected to UTM by SPECFEM), or UTM/Cartesian
# easting/northing in m with SUPPRESS_UTM_PROJECTION; depth of the bottom in km
LATITUDE_MIN                    = 0.d0
LATITUDE_MAX                    = 1.d0
LONGITUDE_MIN                   = 0.d0
LONGITUDE_MAX                   = 1.d0
DEPTH_BLOCK_KM                  = 10.d0
UTM_PROJECTION_ZONE             = 1
SUPPRESS_UTM_PROJECTION         = .false.

# interfaces (flat layers) of the model
INTERFACES_FILE                 = interfaces.dat

# cavity file (none if the file does not exist)
CAVITY_FILE                     = no_cavity.dat

# spectral elements along each surface edge of the box
NEX_XI                          = 8
NEX_ETA                         = 8

# MPI slices along xi and eta (NPROC of the Par_file = NPROC_XI * NPROC_ETA)
NPROC_XI                        = 1
NPROC_ETA                       = 1

# regular mesh, or number of doubling layers and their element layers (counted from the bottom)
USE_REGULAR_MESH                = .true.
NDOUBLINGS                      = 0
NZ_DOUBLING_1                   = 0
NZ_DOUBLING_2                   = 0

# mesh files for visualisation
CREATE_ABAQUS_FILES             = .false.
CREATE_DX_FILES                 = .false.
CREATE_VTK_FILES                = .false.

# save the mesh as CUBIT files (single-process runs only)
SAVE_MESH_AS_CUBIT              = .false.

# where the mesher stores the databases
LOCAL_PATH                      = ./OUTPUT_FILES/DATABASES_MPI

# C-PML thickness (used only with PML_CONDITIONS; degrees, or m with SUPPRESS_UTM_PROJECTION)
THICKNESS_OF_X_PML              = 0.1d0
THICKNESS_OF_Y_PML              = 0.1d0
THICKNESS_OF_Z_PML              = 0.1d0

# materials: id rho(kg/m3) vp(m/s) vs(m/s) Q_kappa Q_mu anisotropy_flag domain_id
# (domain_id: 1 acoustic, 2 elastic)
NMATERIALS                      = 1
1  2700  6000  3460  9999  9999  0  2

# regions: NEX_XI_BEGIN NEX_XI_END NEX_ETA_BEGIN NEX_ETA_END NZ_BEGIN NZ_END material_id
NREGIONS                        = 1
1  8  1  8  1  8  1
"""


def write_specfem_inputs(
    data_dir: str | os.PathLike[str],
    *,
    cmt: CMTSolution | Sequence[CMTSolution],
    stations: Sequence[StationLine],
    par_template: str,
    par_values: Mapping[str, Any],
    mesh: MeshSpec | None,
    mesh_par_template: str | None = None,
    max_frequency: float | None = None,
    common_exponent: bool = True,
) -> dict[str, Path]:
    """Check a SPECFEM3D set-up, then write its input files into ``data_dir``.

    The ``Par_file`` is ``par_template`` with ``par_values`` (see
    :func:`~dare_cli.ra.simulate.specfem.parfile.render_parfile`); with a mesh, ``NPROC``,
    ``UTM_PROJECTION_ZONE`` and ``SUPPRESS_UTM_PROJECTION`` default to the mesh's (a
    different value in ``par_values`` fails the check). With a mesh, the whole set-up is
    checked (NPROC and the mesh split, NEX rules, UTM settings, DT against the stability limit,
    ``max_frequency`` against the resolution, sources and stations inside the mesh) with the
    mesh's materials (exact for the Par_file's ``MODEL = default``) and nothing is written if
    a check fails. Without a mesh (an external mesh), the files are written unchecked and no
    mesher file is written.

    Parameters
    ----------
    data_dir
        SPECFEM's ``DATA`` folder (created if needed), e.g. ``run/DATA``.
    cmt
        The source(s).
    stations
        The stations (at least one).
    par_template
        Text of the ``Par_file`` of the SPECFEM3D version that will run.
    par_values
        ``KEY`` -> value for the Par_file (e.g. NSTEP, DT, MODEL, SAVE_SEISMOGRAMS_VELOCITY).
    mesh
        The internal mesher's mesh, or None.
    mesh_par_template
        Text of a ``Mesh_Par_file`` (default: :data:`MESH_PAR_TEMPLATE`).
    max_frequency
        Highest frequency (Hz) the mesh must resolve (checked if given).
    common_exponent
        Layout of the moment tensor lines (see
        :func:`~dare_cli.ra.simulate.specfem.cmtsolution.format_cmtsolution`).

    Returns
    -------
    dict of str to Path
        ``"CMTSOLUTION"``, ``"STATIONS"``, ``"Par_file"`` and, with a mesh, ``"Mesh_Par_file"``,
        ``"interfaces.dat"``, ``"interface1.dat"``... -> the files written.

    Raises
    ------
    SpecfemConfigError
        A check failed, an unknown Par_file key, or no station (nothing is written).
    """
    if not stations:
        raise SpecfemConfigError("no station to write into STATIONS")
    values = {**_mesh_par_values(mesh), **par_values}
    par_text = render_parfile(par_template, values, source="Par_file template")
    texts = {
        "CMTSOLUTION": format_cmtsolution(cmt, common_exponent=common_exponent),
        "STATIONS": format_stations(stations),
        "Par_file": par_text,
    }
    folder = Path(data_dir)
    targets = {name: folder / name for name in texts}
    if mesh is not None:
        check_simulation(mesh, parse_parfile(par_text, source="rendered Par_file"), cmt,
                         stations, max_frequency=max_frequency)
        mesher = {"Mesh_Par_file": render_mesh_parfile(
            MESH_PAR_TEMPLATE if mesh_par_template is None else mesh_par_template, mesh),
            **render_interfaces(mesh)}
        texts.update(mesher)
        targets.update({name: folder / MESHFEM_FOLDER / name for name in mesher})
    return {name: write_atomic(targets[name], text) for name, text in texts.items()}


def _mesh_par_values(mesh: MeshSpec | None) -> dict[str, Any]:
    """The Par_file values a mesh sets: NPROC and the UTM settings (none without a mesh)."""
    values: dict[str, Any] = {}
    if mesh is not None:
        values["NPROC"] = mesh.nproc
        values["SUPPRESS_UTM_PROJECTION"] = mesh.suppress_utm_projection
        if mesh.utm_zone is not None:
            values["UTM_PROJECTION_ZONE"] = mesh.utm_zone
    return values
