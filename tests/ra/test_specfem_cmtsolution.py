"""SPECFEM3D CMTSOLUTION: reading, writing, construction from QuakeML and from a double couple.

Fixtures: tests/ra/data/specfem (SPECFEM3D's socal1D and analytic examples, see SOURCE.md).
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pytest
from obspy import UTCDateTime, read_events
from obspy.core.event import (
    Catalog,
    Event,
    EventDescription,
    FocalMechanism,
    Magnitude,
    MomentTensor,
    NodalPlane,
    NodalPlanes,
    Origin,
    ResourceIdentifier,
    SourceTimeFunction,
    Tensor,
)
from obspy.imaging.beachball import MomentTensor as BeachballTensor
from obspy.imaging.beachball import aux_plane, mt2plane

from dare_cli.ra.simulate.specfem import (
    CMTSolution,
    SpecfemFileError,
    cmtsolution_from_double_couple,
    cmtsolution_from_event,
    format_cmtsolution,
    read_cmtsolution,
    read_cmtsolutions,
    simulation_origin_time,
    write_cmtsolution,
)
from dare_cli.ra.simulate.specfem.utm import geographic_from_utm
from dare_cli.ra.source import half_duration_from_moment

DATA = Path(__file__).parent / "data" / "specfem"
SOCAL = DATA / "socal1D" / "DATA" / "CMTSOLUTION"
SOCAL_UTM = DATA / "socal1D" / "example_utm" / "CMTSOLUTION_utm"
ANALYTIC = DATA / "analytic_solution_elastic" / "DATA" / "CMTSOLUTION"
ALL_FILES = [SOCAL, SOCAL_UTM, ANALYTIC]
# the socal1D moment tensor, dyne cm (r, t, p)
HOLLYWOOD_RTP = np.array([-0.002, -0.064, 0.066, -0.090, -0.002, 0.188]) * 1e23


# --- reading the real files ---

def test_read_socal_example():
    cmt = read_cmtsolution(SOCAL)
    assert cmt.catalogue == "PDE"
    assert cmt.origin_time == UTCDateTime("2001-09-09T23:59:17.78")
    assert (cmt.latitude, cmt.longitude, cmt.depth_km) == (34.0745, -118.3792, 6.4)
    assert (cmt.mb, cmt.ms, cmt.region) == (4.2, 4.2, "HOLLYWOOD POLET SEM")
    assert cmt.event_name == "9703873"
    assert (cmt.time_shift, cmt.half_duration) == (0.0, 0.3114)
    assert (cmt.latorUTM, cmt.longorUTM, cmt.depth) == (34.0745, -118.3792, 5.4)
    np.testing.assert_allclose(cmt.rtp, HOLLYWOOD_RTP, rtol=1e-15)
    # SPECFEM's solver log for this file: "scalar moment M0 = 2.1834834553987349E+022 dyne-cm"
    assert cmt.scalar_moment * 1e7 == pytest.approx(2.1834834553987349e22, rel=1e-12)
    # SPECFEM prints Mw 4.19277 (2/3 log10 M0[dyne cm] - 10.7); IASPEI's 9.1 in N m gives 4.1594
    assert cmt.moment_magnitude == pytest.approx((math.log10(2.18348345539873e15) - 9.1) / 1.5)


def test_read_analytic_example_free_format():
    # leading blank and single spaces on the header, "latitude:"/"longitude:" labels, "1.d23"
    cmt = read_cmtsolution(ANALYTIC)
    assert cmt.origin_time == UTCDateTime("2021-01-01T01:10:00")
    assert (cmt.latitude, cmt.longitude, cmt.depth_km, cmt.mb, cmt.ms) == (0, 0, 1, 1, 1)
    assert cmt.region == "calibration"
    assert (cmt.event_name, cmt.half_duration, cmt.depth) == ("test", 2.0, 0.0)
    np.testing.assert_array_equal(cmt.rtp, [0, 0, 0, 0, 1e23, 0])


def test_read_utm_example():
    cmt = read_cmtsolution(SOCAL_UTM)
    assert (cmt.latorUTM, cmt.longorUTM) == (3771080.0, 372738.0)  # northing, easting (m)


def test_format_reproduces_the_example_byte_for_byte():
    assert format_cmtsolution(read_cmtsolution(SOCAL)) == SOCAL.read_text()


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_round_trip_every_file(path, tmp_path):
    original = read_cmtsolution(path)
    for common in (True, False):
        written = write_cmtsolution(original, tmp_path / "CMTSOLUTION", common_exponent=common)
        assert read_cmtsolution(written) == original  # every field, exactly


def test_layouts_of_the_moment_lines():
    cmt = read_cmtsolution(SOCAL)
    lines = format_cmtsolution(cmt, common_exponent=False).splitlines()
    assert lines[7] == "Mrr:      -2.000000e+20"
    assert lines[12] == "Mtp:       1.880000e+22"
    assert all(len(line) == 23 for line in lines[1:])  # SPECFEM's fixed layout


def test_header_rounds_the_origin_time_to_centiseconds():
    cmt = read_cmtsolution(SOCAL)
    late = CMTSolution(**{**cmt.__dict__, "origin_time": UTCDateTime("2001-12-31T23:59:59.996")})
    header = format_cmtsolution(late).splitlines()[0]
    assert header.startswith("PDE 2002  1  1  0  0  0.00  34.0745")
    assert read_cmtsolution_text(format_cmtsolution(late)).origin_time == UTCDateTime(2002, 1, 1)


def read_cmtsolution_text(text: str) -> CMTSolution:
    from dare_cli.ra.simulate.specfem.cmtsolution import parse_cmtsolutions
    return parse_cmtsolutions(text)[0]


def test_several_sources(tmp_path):
    first = read_cmtsolution(SOCAL)
    second = CMTSolution(**{**first.__dict__, "event_name": "second", "time_shift": 1.5})
    path = write_cmtsolution([first, second], tmp_path / "CMTSOLUTION")
    assert read_cmtsolutions(path) == [first, second]
    with pytest.raises(SpecfemFileError, match="holds 2 sources; use read_cmtsolutions"):
        read_cmtsolution(path)


@pytest.mark.parametrize(("line", "text", "message"), [
    (1, "XX", r"line 1: expected the header line"),
    (1, "PDE 2001 13  9 23 59 17.78  34.0 -118.0 6.4 4.2 4.2 X", r"line 1: invalid origin time"),
    (5, "latitude_of_centroid: 34.0", r"line 5: expected a line starting with 'latorUTM:' or "
                                      r"'latitude:'"),
    (9, "Mtt:      abc", r"line 9: Mtt: expected a number, found 'abc'"),
])
def test_bad_lines_name_the_file_and_line(tmp_path, line, text, message):
    lines = SOCAL.read_text().splitlines()
    lines[line - 1] = text
    path = tmp_path / "CMTSOLUTION"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecfemFileError, match=re.escape(str(path)) + ", " + message):
        read_cmtsolution(path)


def test_truncated_and_empty_files(tmp_path):
    path = tmp_path / "CMTSOLUTION"
    path.write_text("\n".join(SOCAL.read_text().splitlines()[:10]) + "\n")
    with pytest.raises(SpecfemFileError, match=r"line 11: the source starting on line 1 ends "
                                               r"before its 'Mrt' line"):
        read_cmtsolution(path)
    path.write_text("\n\n")
    with pytest.raises(SpecfemFileError, match="no source in the file"):
        read_cmtsolution(path)
    lines = SOCAL.read_text().splitlines()
    path.write_text("\n".join(lines[:7] + [f"{label}: 0.0" for label in
                                           ("Mrr", "Mtt", "Mpp", "Mrt", "Mrp", "Mtp")]))
    with pytest.raises(SpecfemFileError, match="the moment tensor is zero"):
        read_cmtsolution(path)


def test_validation():
    cmt = read_cmtsolution(SOCAL)
    for change, message in (({"catalogue": "PDE1"}, "catalogue"), ({"half_duration": -1.0},
                            "half_duration"), ({"event_name": "a\nb"}, "one line"),
                            ({"depth": float("nan")}, "depth must be finite"),
                            ({"latitude": 91.0}, "latitude")):
        with pytest.raises(ValueError, match=message):
            CMTSolution(**{**cmt.__dict__, **change})


# --- from QuakeML: the socal1D example rebuilt from its own values ---

def hollywood_event(*, with_stf: bool = True, with_centroid: bool = True) -> Event:
    """QuakeML of the socal1D source, written and read back with ObsPy."""
    hypocentre = Origin(time=UTCDateTime("2001-09-09T23:59:17.78"), latitude=34.0745,
                        longitude=-118.3792, depth=6400.0)
    centroid = Origin(resource_id=ResourceIdentifier("smi:local/origin/centroid"),
                      time=hypocentre.time, latitude=34.0745, longitude=-118.3792,
                      depth=5400.0, origin_type="centroid")
    n_m = HOLLYWOOD_RTP * 1e-7
    tensor = Tensor(m_rr=n_m[0], m_tt=n_m[1], m_pp=n_m[2], m_rt=n_m[3], m_rp=n_m[4],
                    m_tp=n_m[5])
    moment = MomentTensor(tensor=tensor, scalar_moment=2.1834834553987349e15,
                          derived_origin_id=centroid.resource_id if with_centroid else None)
    if with_stf:
        moment.source_time_function = SourceTimeFunction(type="triangle", duration=2 * 0.3114)
    event = Event(resource_id=ResourceIdentifier("smi:local/event/9703873"),
                  origins=[hypocentre, centroid] if with_centroid else [hypocentre],
                  magnitudes=[Magnitude(mag=4.2, magnitude_type="mb"),
                              Magnitude(mag=4.2, magnitude_type="Ms")],
                  focal_mechanisms=[FocalMechanism(moment_tensor=moment)],
                  event_descriptions=[EventDescription(text="HOLLYWOOD POLET SEM",
                                                       type="region name")])
    event.preferred_origin_id = hypocentre.resource_id
    buffer = io.BytesIO()
    Catalog([event]).write(buffer, format="QUAKEML")
    buffer.seek(0)
    return read_events(buffer, format="QUAKEML")[0]


def test_from_quakeml_reproduces_the_example_field_by_field():
    expected = read_cmtsolution(SOCAL)
    cmt = cmtsolution_from_event(hollywood_event())
    for name in expected.__dataclass_fields__:
        if name.startswith("m") and len(name) == 3:
            assert getattr(cmt, name) == pytest.approx(getattr(expected, name), rel=1e-12), name
        else:
            assert getattr(cmt, name) == getattr(expected, name), name
    assert format_cmtsolution(cmt) == SOCAL.read_text()


def test_from_quakeml_in_utm():
    # example_utm's CMTSOLUTION_utm gives the centroid rounded to the metre on Clarke 1866
    expected = read_cmtsolution(SOCAL_UTM)
    old = cmtsolution_from_event(hollywood_event(), utm_zone=11, ellipsoid="clrk66")
    assert old.latorUTM == pytest.approx(expected.latorUTM, abs=0.5)
    assert old.longorUTM == pytest.approx(expected.longorUTM, abs=0.5)
    # WGS84, as SPECFEM3D projects today: its solver log says UTM x 372740.55570725049,
    # y 3771274.6875336180 for this source
    cmt = cmtsolution_from_event(hollywood_event(), utm_zone=11)
    assert cmt.longorUTM == pytest.approx(372740.55570725049, abs=1e-3)
    assert cmt.latorUTM == pytest.approx(3771274.6875336180, abs=1e-3)


def test_from_quakeml_half_duration_by_scaling_and_hypocentre_without_centroid():
    cmt = cmtsolution_from_event(hollywood_event(with_stf=False, with_centroid=False))
    # Global CMT scaling hdur = 1.05e-8 M0^(1/3), M0 in dyne cm: 0.2935 s (the catalogue: 0.3114)
    assert cmt.half_duration == pytest.approx(1.05e-8 * 2.1834834553987349e22 ** (1 / 3))
    assert cmt.half_duration == pytest.approx(0.29348, abs=1e-5)
    assert (cmt.depth, cmt.depth_km, cmt.time_shift) == (6.4, 6.4, 0.0)


def test_from_quakeml_time_shift_of_the_centroid():
    event = hollywood_event()
    event.origins[1].time += 3.25
    event.origins[1].latitude += 0.01
    cmt = cmtsolution_from_event(event, event_name="shifted")
    assert (cmt.time_shift, cmt.latorUTM, cmt.latitude) == (3.25, 34.0845, 34.0745)
    assert cmt.event_name == "shifted"


def test_from_quakeml_with_nodal_planes_only():
    event = Event(origins=[Origin(time=UTCDateTime(2020, 1, 1), latitude=10.0, longitude=20.0,
                                  depth=12000.0)],
                  magnitudes=[Magnitude(mag=6.0, magnitude_type="Mw")],
                  focal_mechanisms=[FocalMechanism(nodal_planes=NodalPlanes(
                      nodal_plane_1=NodalPlane(strike=30.0, dip=60.0, rake=-45.0)))])
    cmt = cmtsolution_from_event(event)
    expected = cmtsolution_from_double_couple(event.origins[0], 30.0, 60.0, -45.0, 6.0)
    np.testing.assert_allclose(cmt.rtp, expected.rtp, rtol=1e-12)
    assert (cmt.mb, cmt.ms, cmt.event_name) == (6.0, 6.0, "20200101000000")


def test_from_quakeml_errors():
    with pytest.raises(ValueError, match="no origin"):
        cmtsolution_from_event(Event())
    event = Event(origins=[Origin(time=UTCDateTime(2020, 1, 1), latitude=1, longitude=2,
                                  depth=3000.0)])
    with pytest.raises(ValueError, match="no focal mechanism: use cmtsolution_from_double"):
        cmtsolution_from_event(event)
    event.focal_mechanisms.append(FocalMechanism())
    with pytest.raises(ValueError, match="neither a moment tensor nor a nodal plane"):
        cmtsolution_from_event(event)


# --- double couples: the r/t/p convention checked against independent constructions ---

MECHANISMS = [(0.0, 90.0, 0.0), (0.0, 45.0, 90.0), (30.0, 60.0, -45.0), (203.0, 10.0, 88.0),
              (321.0, 81.0, 180.0), (171.19, 65.99, -177.14), (75.0, 30.0, -90.0)]
ORIGIN = Origin(time=UTCDateTime("2019-07-06T03:19:53"), latitude=35.77, longitude=-117.599,
                depth=8000.0)


def same_plane(found: tuple[float, float, float], wanted: tuple[float, float, float]) -> bool:
    def close(a, b):
        return all(abs((x - y + 180.0) % 360.0 - 180.0) < 1e-6 for x, y in zip(a, b,
                                                                             strict=True))
    return close(found, wanted) or close(found, tuple(aux_plane(*wanted)))


@pytest.mark.parametrize("angles", MECHANISMS)
def test_double_couple_matches_obspy_beachball(angles):
    # ObsPy's beachball code takes GCMT's (r, t, p) = (up, south, east) tensors: its nodal
    # planes must be the double couple's (either plane)
    cmt = cmtsolution_from_double_couple(ORIGIN, *angles, magnitude=7.1)
    plane = mt2plane(BeachballTensor(cmt.rtp.tolist(), 0))
    assert same_plane((plane.strike, plane.dip, plane.rake), angles)
    m0 = 10 ** (1.5 * 7.1 + 9.1)
    assert cmt.scalar_moment == pytest.approx(m0, rel=1e-12)
    assert abs(cmt.rtp[:3].sum()) < 1e-9 * m0 * 1e7  # no isotropic part


@pytest.mark.parametrize("angles", MECHANISMS)
def test_double_couple_matches_specfem_local_frame(angles):
    # Independent construction: fault normal n and slip s (Aki & Richards eq. 4.88, 4.89) in
    # (east, north, up), M = M0 (n s^T + s n^T); SPECFEM's locate_source maps its local
    # (x east, y north, z up) tensor to the file as Mrr = Mzz, Mtt = Myy, Mpp = Mxx,
    # Mrt = -Myz, Mrp = Mxz, Mtp = -Mxy.
    strike, dip, rake = np.radians(angles)
    north_east_down_normal = np.array([-math.sin(dip) * math.sin(strike),
                                       math.sin(dip) * math.cos(strike), -math.cos(dip)])
    north_east_down_slip = np.array([
        math.cos(rake) * math.cos(strike) + math.cos(dip) * math.sin(rake) * math.sin(strike),
        math.cos(rake) * math.sin(strike) - math.cos(dip) * math.sin(rake) * math.cos(strike),
        -math.sin(rake) * math.sin(dip)])

    def enu(v):
        return np.array([v[1], v[0], -v[2]])

    n, s = enu(north_east_down_normal), enu(north_east_down_slip)
    m0 = 10 ** (1.5 * 5.0 + 9.1) * 1e7  # dyne cm
    m = m0 * (np.outer(n, s) + np.outer(s, n))
    expected = [m[2, 2], m[1, 1], m[0, 0], -m[1, 2], m[0, 2], -m[0, 1]]
    cmt = cmtsolution_from_double_couple(ORIGIN, *angles, magnitude=5.0)
    np.testing.assert_allclose(cmt.rtp, expected, rtol=0, atol=1e-12 * m0)


def test_double_couple_of_a_known_solution():
    # The socal1D (SCSN) Hollywood tensor is nearly a double couple (CLVD: eigenvalues
    # -2.223, 0.081, 2.142 e15 N m). Its best double couple per ObsPy, strike 171.19 dip 65.99
    # rake -177.14, with the file's M0, gives back the file's components within 0.008e23 dyne
    # cm (3.7% of M0, the size of the CLVD part).
    expected = read_cmtsolution(SOCAL)
    plane = mt2plane(BeachballTensor(expected.rtp.tolist(), 0))
    rake = (plane.rake + 180.0) % 360.0 - 180.0  # ObsPy gives 182.86
    assert (plane.strike, plane.dip, rake) == pytest.approx((171.19, 65.99, -177.14), abs=0.01)
    cmt = cmtsolution_from_double_couple(
        ORIGIN, plane.strike, plane.dip, plane.rake,
        magnitude=(math.log10(expected.scalar_moment) - 9.1) / 1.5)
    np.testing.assert_allclose(cmt.rtp, expected.rtp, rtol=0, atol=0.01e23)
    assert cmt.scalar_moment == pytest.approx(expected.scalar_moment, rel=1e-12)


def test_double_couple_defaults_and_utm():
    cmt = cmtsolution_from_double_couple(ORIGIN, 321.0, 81.0, 180.0, 7.1, region="RIDGECREST")
    m0 = 10 ** (1.5 * 7.1 + 9.1)
    assert cmt.half_duration == pytest.approx(half_duration_from_moment(m0))
    assert cmt.half_duration == pytest.approx(8.7, abs=0.05)
    assert (cmt.event_name, cmt.mb, cmt.ms, cmt.depth) == ("20190706031953", 7.1, 7.1, 8.0)
    assert (cmt.latorUTM, cmt.longorUTM) == (35.77, -117.599)
    utm = cmtsolution_from_double_couple(ORIGIN, 321.0, 81.0, 180.0, 7.1, utm_zone=11,
                                         half_duration=5.0)
    assert utm.half_duration == 5.0
    assert geographic_from_utm(utm.longorUTM, utm.latorUTM, 11) == pytest.approx(
        (-117.599, 35.77), abs=1e-9)
    assert 400e3 < utm.longorUTM < 500e3  # west of zone 11's central meridian (117 W)
    with pytest.raises(ValueError, match="needs a time, latitude, longitude and depth"):
        cmtsolution_from_double_couple(Origin(time=ORIGIN.time), 0, 90, 0, 5.0)


def test_simulation_origin_time():
    # SPECFEM's get_cmt subtracts the smallest time shift: its time axis starts from there
    cmt = read_cmtsolution(SOCAL)
    assert simulation_origin_time(cmt) == cmt.origin_time
    late = CMTSolution(**{**cmt.__dict__, "time_shift": 3.25})
    early = CMTSolution(**{**cmt.__dict__, "time_shift": 1.5})
    assert simulation_origin_time(late) == cmt.origin_time + 3.25
    assert simulation_origin_time([late, early]) == cmt.origin_time + 1.5
