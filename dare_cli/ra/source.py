"""Point sources of the Rapid Assessment: seismic moment, moment tensors, half durations.

Coordinate systems
------------------
Unless a name says otherwise, a moment tensor here is a symmetric 3x3 array in newton-metres
(N·m) in the frame of Aki & Richards (2002, box 4.4): ``x`` = north, ``y`` = east, ``z`` = down
("NED"). Two other frames are used by the tools we talk to:

* GCMT, QuakeML and SPECFEM ``CMTSOLUTION`` files give the six components in spherical
  coordinates ``r`` = up, ``t`` (theta) = south, ``p`` (phi) = east, in the order
  ``Mrr, Mtt, Mpp, Mrt, Mrp, Mtp`` (CMTSOLUTION in dyne·cm, QuakeML in N·m). Then
  ``Mrr = Mzz``, ``Mtt = Mxx``, ``Mpp = Myy``, ``Mrt = Mxz``, ``Mrp = -Myz``, ``Mtp = -Mxy``
  (Aki & Richards box 4.4).
* SPECFEM3D's local Cartesian meshes use ``x`` = east, ``y`` = north, ``z`` = up ("ENU"), see
  :func:`ned_to_enu`.
"""

from __future__ import annotations

import math

import numpy as np
from obspy.core.event import Event

__all__ = [
    "DYNE_CM_PER_NM",
    "double_couple_tensor",
    "enu_to_ned",
    "half_duration_from_moment",
    "magnitude_from_moment",
    "moment_from_magnitude",
    "ned_to_enu",
    "ned_to_rtp",
    "rtp_to_ned",
    "scalar_moment",
    "tensor_from_event",
]

DYNE_CM_PER_NM = 1.0e7
"""dyne·cm in one N·m."""

# Permutation (with a sign flip of the vertical) between NED and ENU; it is its own inverse.
_NED_ENU = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


def moment_from_magnitude(mw: float) -> float:
    """Scalar seismic moment of a moment magnitude.

    Hanks & Kanamori (1979) with the IASPEI (2013) standard constant:
    ``M0 = 10**(1.5 * Mw + 9.1)``.

    Parameters
    ----------
    mw
        Moment magnitude.

    Returns
    -------
    float
        Scalar moment in N·m.
    """
    if not math.isfinite(mw):
        raise ValueError(f"magnitude must be finite, got {mw!r}")
    return float(10.0 ** (1.5 * mw + 9.1))


def magnitude_from_moment(m0: float) -> float:
    """Moment magnitude of a scalar moment in N·m (inverse of :func:`moment_from_magnitude`)."""
    if not m0 > 0.0:
        raise ValueError(f"scalar moment must be > 0 N·m, got {m0!r}")
    return (math.log10(m0) - 9.1) / 1.5


def scalar_moment(tensor: np.ndarray) -> float:
    """Scalar moment of a moment tensor, ``M0 = ||M||_F / sqrt(2)`` (Silver & Jordan, 1982).

    Exact for a double couple; for a general tensor it is the usual RMS definition.

    Parameters
    ----------
    tensor
        3x3 moment tensor in N·m (any orthonormal frame).

    Returns
    -------
    float
        Scalar moment in N·m.
    """
    m = _as_tensor(tensor)
    return float(np.sqrt(np.sum(m * m) / 2.0))


def double_couple_tensor(strike: float, dip: float, rake: float, m0: float) -> np.ndarray:
    """Moment tensor of a double couple from its fault-plane angles.

    Aki & Richards (2002), box 4.4, in their frame ``x`` = north, ``y`` = east, ``z`` = down.

    Parameters
    ----------
    strike, dip, rake
        Fault-plane angles in degrees (strike clockwise from north with the fault dipping to
        the right of the strike direction; rake of the hanging wall's slip, from the strike
        direction, counter-clockwise in the fault plane).
    m0
        Scalar moment in N·m.

    Returns
    -------
    numpy.ndarray
        Symmetric 3x3 tensor in N·m, NED frame, zero trace.
    """
    for name, value in (("strike", strike), ("dip", dip), ("rake", rake), ("m0", m0)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if m0 < 0.0:
        raise ValueError(f"scalar moment must be >= 0 N·m, got {m0!r}")
    phi, delta, lam = np.radians([strike, dip, rake])
    sd, cd = math.sin(delta), math.cos(delta)
    s2d, c2d = math.sin(2 * delta), math.cos(2 * delta)
    sl, cl = math.sin(lam), math.cos(lam)
    sp, cp = math.sin(phi), math.cos(phi)
    s2p, c2p = math.sin(2 * phi), math.cos(2 * phi)
    mxx = -(sd * cl * s2p + s2d * sl * sp * sp)
    mxy = sd * cl * c2p + 0.5 * s2d * sl * s2p
    mxz = -(cd * cl * cp + c2d * sl * sp)
    myy = sd * cl * s2p - s2d * sl * cp * cp
    myz = -(cd * cl * sp - c2d * sl * cp)
    mzz = s2d * sl
    return m0 * np.array([[mxx, mxy, mxz], [mxy, myy, myz], [mxz, myz, mzz]])


def ned_to_rtp(tensor: np.ndarray) -> np.ndarray:
    """GCMT/QuakeML/CMTSOLUTION components of a NED moment tensor.

    Parameters
    ----------
    tensor
        3x3 moment tensor, NED frame (units kept).

    Returns
    -------
    numpy.ndarray
        ``[Mrr, Mtt, Mpp, Mrt, Mrp, Mtp]`` (r up, t south, p east), same units.
    """
    m = _as_tensor(tensor)
    return np.array([m[2, 2], m[0, 0], m[1, 1], m[0, 2], -m[1, 2], -m[0, 1]])


def rtp_to_ned(components: np.ndarray | list[float] | tuple[float, ...]) -> np.ndarray:
    """NED moment tensor from ``[Mrr, Mtt, Mpp, Mrt, Mrp, Mtp]`` (inverse of :func:`ned_to_rtp`).

    Parameters
    ----------
    components
        Six components (r up, t south, p east), any unit (kept).

    Returns
    -------
    numpy.ndarray
        Symmetric 3x3 tensor in the NED frame.
    """
    c = np.asarray(components, dtype=float)
    if c.shape != (6,) or not np.all(np.isfinite(c)):
        raise ValueError(f"expected 6 finite components Mrr..Mtp, got {components!r}")
    mrr, mtt, mpp, mrt, mrp, mtp = c
    return np.array([[mtt, -mtp, mrt], [-mtp, mpp, -mrp], [mrt, -mrp, mrr]])


def ned_to_enu(tensor: np.ndarray) -> np.ndarray:
    """Rotate a moment tensor (or a vector) between NED and ENU (x east, y north, z up).

    The change of frame is its own inverse, so this also converts ENU to NED
    (:func:`enu_to_ned` is the same function).

    Parameters
    ----------
    tensor
        3x3 tensor or length-3 vector.

    Returns
    -------
    numpy.ndarray
        The same quantity in the other frame.
    """
    a = np.asarray(tensor, dtype=float)
    if a.shape == (3,):
        return _NED_ENU @ a
    m = _as_tensor(a)
    return _NED_ENU @ m @ _NED_ENU.T


enu_to_ned = ned_to_enu


def tensor_from_event(event: Event) -> np.ndarray | None:
    """Moment tensor of an event's focal mechanism, if it has one.

    Uses the preferred focal mechanism (else the first one) and its ``moment_tensor.tensor``
    (QuakeML components in N·m, r/t/p frame).

    Parameters
    ----------
    event
        ObsPy event (e.g. from a QuakeML file).

    Returns
    -------
    numpy.ndarray or None
        3x3 tensor in N·m in the NED frame, or None when the event has no focal mechanism
        with all six tensor components.
    """
    mechanism = event.preferred_focal_mechanism()
    if mechanism is None and event.focal_mechanisms:
        mechanism = event.focal_mechanisms[0]
    if mechanism is None or mechanism.moment_tensor is None:
        return None
    tensor = mechanism.moment_tensor.tensor
    if tensor is None:
        return None
    components = [tensor.m_rr, tensor.m_tt, tensor.m_pp, tensor.m_rt, tensor.m_rp, tensor.m_tp]
    if any(c is None for c in components):
        return None
    return rtp_to_ned([float(c) for c in components])


def half_duration_from_moment(m0: float) -> float:
    """Half duration of the source time function from the scalar moment.

    The empirical scaling used by the Global CMT project (Ekström et al., 2012):
    ``hdur = 1.05e-8 * M0**(1/3)`` s with ``M0`` in dyne·cm (about 8.7 s for Mw 7.1,
    0.31 s for Mw 4.2).

    Parameters
    ----------
    m0
        Scalar moment in N·m.

    Returns
    -------
    float
        Half duration in s.
    """
    if not (math.isfinite(m0) and m0 > 0.0):
        raise ValueError(f"scalar moment must be a finite number > 0 N·m, got {m0!r}")
    return 1.05e-8 * (m0 * DYNE_CM_PER_NM) ** (1.0 / 3.0)


def _as_tensor(tensor: np.ndarray) -> np.ndarray:
    m = np.asarray(tensor, dtype=float)
    if m.shape != (3, 3):
        raise ValueError(f"a moment tensor must have shape (3, 3), got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("the moment tensor has non-finite components")
    return m
