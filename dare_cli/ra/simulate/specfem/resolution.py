"""SPECFEM3D's time step and resolution estimates of a mesh, computed before meshing.

The estimates of SPECFEM3D itself (``src/shared/check_mesh_resolution.f90``, printed by
``xgenerate_databases`` and ``xspecfem3D`` as "Maximum suggested time step" and "Minimum period
resolved"):

* stability: ``DT <= C * d_min / v_max`` in every element, with ``C`` =
  :data:`COURANT_SUGGESTED` = 0.5 (SPECFEM's ``COURANT_SUGGESTED``; the mesher warns that a
  Courant number above 0.55 "should be unstable"), ``v_max`` the element's P velocity and
  ``d_min`` its smallest distance between neighbouring Gauss-Lobatto-Legendre (GLL) points,
  estimated as :func:`gll_spacing_fraction` (0.172673 for NGLL = 5) times the element's
  shortest edge;
* resolution: the shortest period resolved is ``(L_max / (NGLL - 1)) / v_min * 5`` over all
  elements (:data:`POINTS_PER_WAVELENGTH` = 5 GLL points per minimum wavelength, the rule of
  thumb of Komatitsch et al. 2005 quoted there), ``L_max`` the element's longest edge and
  ``v_min`` its S velocity (P velocity in fluids).

Element sizes follow the mesher's geometry: the UTM rectangle split into ``NEX_XI`` x
``NEX_ETA`` columns at the surface, each layer split evenly in depth, and each doubling at
element layer ``d`` a two-layer "superbrick" (layers ``d - 1`` and ``d``) below which the
horizontal size doubles. On SPECFEM's socal1D example this reproduces SPECFEM's printed
suggested time step (0.022864 s here, 0.022857 s by SPECFEM) and minimum period (2.5926 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre

from dare_cli.ra.simulate.specfem.mesh import MeshSpec, mesh_utm_box

__all__ = [
    "COURANT_SUGGESTED",
    "NGLL",
    "POINTS_PER_WAVELENGTH",
    "LayerResolution",
    "MeshResolution",
    "gll_spacing_fraction",
    "mesh_resolution",
]

#: SPECFEM3D's Courant number for its suggested time step (check_mesh_resolution.f90).
COURANT_SUGGESTED = 0.5
#: GLL points per minimum wavelength for the shortest period resolved (same routine).
POINTS_PER_WAVELENGTH = 5.0
#: GLL points per element edge of SPECFEM3D's default build (``NGLLX = NGLLY = NGLLZ = 5``).
NGLL = 5


def gll_spacing_fraction(ngll: int = NGLL) -> float:
    """Smallest distance between neighbouring GLL points, as a fraction of the element edge.

    The ``ngll`` Gauss-Lobatto-Legendre points on [-1, 1] are -1, 1 and the roots of the
    derivative of the Legendre polynomial of degree ``ngll - 1``.

    Parameters
    ----------
    ngll
        Points per edge (>= 2).

    Returns
    -------
    float
        0.5 for 3 points, 0.1726732646 for 5 (SPECFEM's ``percent_GLL(5)`` = 17.2673 %).
    """
    if ngll < 2:
        raise ValueError(f"ngll must be >= 2, got {ngll}")
    inner = legendre.Legendre.basis(ngll - 1).deriv().roots() if ngll > 2 else np.array([])
    points = np.sort(np.concatenate([[-1.0, 1.0], np.real(inner)]))
    return float(np.diff(points).min() / 2.0)


@dataclass(frozen=True)
class LayerResolution:
    """Stability and resolution estimates of one layer of a mesh (see :func:`mesh_resolution`).

    Attributes
    ----------
    index
        Layer number from the bottom (1-based).
    bottom, top
        Heights, m.
    edge_min, edge_max
        Shortest and longest element edges in the layer, m.
    vp, min_velocity
        Fastest (P) and slowest (S, or P in a fluid) wave speeds, m/s.
    dt_max
        Largest stable time step, s (Courant number :data:`COURANT_SUGGESTED` by default).
    min_period
        Shortest period resolved, s.
    """

    index: int
    bottom: float
    top: float
    edge_min: float
    edge_max: float
    vp: float
    min_velocity: float
    dt_max: float
    min_period: float

    def describe(self) -> str:
        """``layer 2 (z -32.0..-16.0 km)``."""
        return f"layer {self.index} (z {self.bottom / 1e3:g}..{self.top / 1e3:g} km)"


@dataclass(frozen=True)
class MeshResolution:
    """Stability and resolution estimates of a mesh, and the Courant number of a time step.

    Attributes
    ----------
    box
        ``x_min, x_max, y_min, y_max`` of the mesh in UTM (or Cartesian) metres.
    gll_fraction
        GLL point spacing / edge length used (0.1727 for NGLL = 5).
    courant_max
        Courant number the time step limit is computed for.
    layers
        Per-layer estimates, from the bottom up.
    dt
        The time step checked, s (None if none was given).
    """

    box: tuple[float, float, float, float]
    gll_fraction: float
    courant_max: float
    layers: tuple[LayerResolution, ...]
    dt: float | None = None

    @property
    def dt_max(self) -> float:
        """Largest stable time step, s: the smallest over the layers."""
        return min(layer.dt_max for layer in self.layers)

    @property
    def min_period(self) -> float:
        """Shortest period resolved, s: the longest over the layers."""
        return max(layer.min_period for layer in self.layers)

    @property
    def max_frequency(self) -> float:
        """Highest frequency resolved, Hz (``1 / min_period``)."""
        return 1.0 / self.min_period

    @property
    def edge_min(self) -> float:
        """Shortest element edge, m."""
        return min(layer.edge_min for layer in self.layers)

    @property
    def edge_max(self) -> float:
        """Longest element edge, m."""
        return max(layer.edge_max for layer in self.layers)

    @property
    def gll_spacing_min(self) -> float:
        """Smallest GLL point spacing, m."""
        return self.gll_fraction * self.edge_min

    @property
    def courant(self) -> float | None:
        """Courant number ``DT * vp / d_min`` of ``dt`` (largest over the layers), or None."""
        if self.dt is None:
            return None
        return max(self.dt * layer.vp / (self.gll_fraction * layer.edge_min)
                   for layer in self.layers)

    @property
    def stability_layer(self) -> LayerResolution:
        """The layer that limits the time step."""
        return min(self.layers, key=lambda layer: layer.dt_max)

    @property
    def resolution_layer(self) -> LayerResolution:
        """The layer that limits the resolved period."""
        return max(self.layers, key=lambda layer: layer.min_period)


def mesh_resolution(mesh: MeshSpec, dt: float | None = None, *,
                    courant_max: float = COURANT_SUGGESTED,
                    points_per_wavelength: float = POINTS_PER_WAVELENGTH,
                    ngll: int = NGLL, ellipsoid: str = "WGS84") -> MeshResolution:
    """SPECFEM3D's time step and resolution estimates for a mesh, before meshing it.

    Per element layer ``k``: the surface element size ``(width_x / NEX_XI, width_y /
    NEX_ETA)`` doubles once for every doubling ``d`` with ``k <= d - 2``; the doubling
    superbrick (layers ``d - 1`` and ``d``) has the finer size on top and twice it below, and
    its sub-elements are taken as half the layer thickness tall (a conservative guess).
    Then ``dt_max = courant_max * f_GLL * edge_min / vp`` and ``min_period = edge_max /
    (ngll - 1) / v_min * points_per_wavelength`` (see the module notes).

    Parameters
    ----------
    mesh
        The mesh.
    dt
        A time step (s) to compute the Courant number of (optional).
    courant_max
        Courant number of the time step limit (SPECFEM suggests 0.5).
    points_per_wavelength
        GLL points per minimum wavelength (SPECFEM uses 5).
    ngll
        GLL points per element edge (SPECFEM's default build: 5).
    ellipsoid
        For the UTM projection of a mesh in degrees.

    Returns
    -------
    MeshResolution
    """
    if not courant_max > 0 or not points_per_wavelength > 0:
        raise ValueError("courant_max and points_per_wavelength must be > 0")
    box = mesh_utm_box(mesh, ellipsoid=ellipsoid)
    h_x = (box[1] - box[0]) / mesh.nex_xi
    h_y = (box[3] - box[2]) / mesh.nex_eta
    fraction = gll_spacing_fraction(ngll)
    layers = []
    k = 0
    for i, layer in enumerate(mesh.layers):
        bottom = mesh.bottom if i == 0 else mesh.layers[i - 1].top
        dz = (layer.top - bottom) / layer.elements
        edge_min, edge_max = math.inf, 0.0
        for _ in range(layer.elements):
            k += 1
            factor = 2.0 ** sum(1 for d in mesh.doublings if k <= d - 2)
            in_brick = any(k in (d - 1, d) for d in mesh.doublings)
            fine = (h_x * factor, h_y * factor)
            edge_min = min(edge_min, *fine, dz / 2.0 if in_brick else dz)
            coarse = (2.0 * fine[0], 2.0 * fine[1]) if in_brick else fine
            edge_max = max(edge_max, *coarse, dz)
        material = layer.material
        layers.append(LayerResolution(
            index=i + 1, bottom=bottom, top=layer.top, edge_min=edge_min, edge_max=edge_max,
            vp=material.vp, min_velocity=material.min_velocity,
            dt_max=courant_max * fraction * edge_min / material.vp,
            min_period=edge_max / (ngll - 1) / material.min_velocity * points_per_wavelength))
    return MeshResolution(box=box, gll_fraction=fraction, courant_max=courant_max,
                          layers=tuple(layers), dt=dt)
