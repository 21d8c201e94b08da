"""1D velocity model tables: the formats, their checks, and the mesher's layers they become."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dare_cli.ra.simulate.specfem import (
    MESH_PAR_TEMPLATE,
    Material,
    MeshSpec,
    SpecfemFileError,
    read_mesh_spec,
    render_interfaces,
    render_mesh_parfile,
)
from dare_cli.ra.simulate.specfem.velocity_model import (
    NO_ATTENUATION,
    format_velocity_model,
    parse_velocity_model,
    q_kappa_from_qp_qs,
    read_velocity_model,
)

SOCAL = Path(__file__).parent / "data" / "specfem" / "socal1D"

#: SPECFEM's socal1D model (its Mesh_Par_file materials) in the common layout, km and km/s.
SOCAL_TABLE = """\
# Southern California 1D model (Kanamori & Hadley 1975; SPECFEM's socal1D example)
# depth  vp   vs    rho   qkappa  qmu
  0.0    5.5  3.18  2.4   9999    100
  5.5    6.3  3.64  2.67  9999    300
  16.0   6.7  3.87  2.8   9999    500
  32.0   7.8  4.5   3.0   9999    1000
"""


def test_the_common_layout_without_a_header():
    model = parse_velocity_model("0 5.5 3.18 2.4 200 100\n5.5 6.3 3.64 2.67 600 300\n")
    first, second = model.layers
    assert (first.top, first.vp, first.vs, first.rho) == (0.0, 5500.0, 3180.0, 2400.0)
    assert second.top == 5500.0
    assert first.q_mu == 100.0
    assert first.q_kappa == pytest.approx(q_kappa_from_qp_qs(200, 100, 5.5, 3.18))
    assert [layer.line for layer in model.layers] == [1, 2]


def test_a_header_names_columns_and_units():
    text = ("thickness[m], vs(m/s), vp(m/s), rho(kg/m3), qmu, qkappa\n"
            "1000, 1000, 2000, 2000, 50, 500\n"
            "0, 3000, 5200, 2600, 300, 9999\n")
    model = parse_velocity_model(text, source="t.csv")
    assert [layer.top for layer in model.layers] == [0.0, 1000.0]
    assert model.layers[0].material() == Material(2000, 2000, 1000, 500, 50)
    assert model.min_velocity == 1000.0


def test_si_units_are_recognised_without_a_header():
    model = parse_velocity_model("0 5500 3180 2400\n5500 6300 3640 2670\n")
    assert [layer.top for layer in model.layers] == [0.0, 5500.0]
    assert model.layers[1].vp == 6300.0
    assert model.layers[0].q_mu == NO_ATTENUATION


def test_qp_qs_become_qkappa_qmu():
    # vp = sqrt(3) vs and Qp = 2 Qs: L = 4/9, 1/Qkappa = (1/(2 Qs) - 4/(9 Qs)) / (5/9)
    assert q_kappa_from_qp_qs(200.0, 100.0, math.sqrt(3.0), 1.0) == pytest.approx(1000.0)
    # Qp = 9/4 Qs: no bulk loss at all
    assert q_kappa_from_qp_qs(225.0, 100.0, math.sqrt(3.0), 1.0) == NO_ATTENUATION


def test_the_socal_table_round_trips_to_the_mesh_par_file(tmp_path):
    path = tmp_path / "socal.txt"
    path.write_text(SOCAL_TABLE)
    model = read_velocity_model(path)
    reference = read_mesh_spec(SOCAL / "DATA" / "meshfem3D_files" / "Mesh_Par_file")
    layers = model.mesh_layers(60.0, [5500.0 / 3, 10500.0 / 3, 16000.0 / 3, 28000.0 / 3])
    assert layers == reference.layers  # the same tops, element counts and materials
    mesh = MeshSpec(x_min=-118.728, x_max=-118.237, y_min=33.79, y_max=34.157, depth_km=60.0,
                    nex_xi=24, nex_eta=24, layers=layers, utm_zone=11)
    folder = tmp_path / "meshfem3D_files"
    folder.mkdir()
    (folder / "Mesh_Par_file").write_text(render_mesh_parfile(MESH_PAR_TEMPLATE, mesh))
    for name, text in render_interfaces(mesh).items():
        (folder / name).write_text(text)
    back = read_mesh_spec(folder / "Mesh_Par_file")
    assert [layer.material for layer in back.layers] == [
        layer.material() for layer in reversed(model.layers)]
    assert back.layers == mesh.layers
    # and the table written back reads the same
    assert parse_velocity_model(format_velocity_model(model)).layers == tuple(
        layer.__class__(**{**layer.__dict__, "line": i + 2})
        for i, layer in enumerate(model.layers))


def test_layers_below_the_mesh_are_left_out_and_counts_follow_the_height():
    model = parse_velocity_model(SOCAL_TABLE)
    layers = model.mesh_layers(20.0, 2000.0)  # bottom up, down to 20 km
    assert [layer.top for layer in layers] == [-16000.0, -5500.0, 0.0]
    assert [layer.elements for layer in layers] == [2, 6, 3]  # 4 km, 10.5 km, 5.5 km
    with pytest.raises(ValueError, match="3 layers but 2 element heights"):
        model.mesh_layers(20.0, [1000.0, 2000.0])


def test_a_fluid_layer_is_acoustic():
    model = parse_velocity_model("depth vp vs rho\n0 1.5 0 1.02\n1 5.5 3.18 2.4\n")
    assert model.layers[0].material().domain == 1
    assert model.layers[1].material().domain == 2


@pytest.mark.parametrize(("text", "message"), [
    ("0 5.5 3.18 2.4\n5.5 6.3 4.6 2.67\n",
     r"m.txt, line 2: vs = 4600 m/s is above vp/sqrt\(2\) = 4454.77 m/s \(vp = 6300 m/s\)"),
    ("# depth vp vs rho\n0 5.5 3.18 2.4\n10 6.3 3.64 2.67\n8 6.7 3.87 2.8\n",
     r"m.txt, line 4: depths must increase downwards: 8 km follows 10 km \(line 3\)"),
    ("0 5.5 3.18 2.4\n5.5 6.3 3.64 2.67\n5.5 6.7 3.87 2.8\n",
     r"line 3: depths must increase .* give each layer once, by its top"),
    ("2 5.5 3.18 2.4\n", r"line 1: the first layer must start at the surface \(depth 0\)"),
    ("0 5.5 3.18 2.4\n5.5 6.3 x 2.67\n", r"line 2: 'x' is not a number"),
    ("0 5.5 3.18 2.4\n5.5 6.3 3.64\n", r"line 2: 3 values, expected 4 \(depth vp vs rho\)"),
    ("0 5.5 3.18\n", r"line 1: 3 columns: without a header line the layout is"),
    ("0 -5.5 3.18 2.4\n", r"line 1: vp must be > 0, got -5.5"),
    ("0 5.5 3.18 2.4\n1 0 0 2.4\n", r"line 2: vp must be > 0, got 0 m/s"),
    ("0 50 3.18 2.4\n", r"line 1: vp = 50: cannot tell km/s \(< 20\) from m/s"),
    ("0 5.5 3.18 0\n", r"line 1: rho must be > 0, got 0"),
    ("0 5.5 3.18 2.4\n1 6 3.5 -1\n", r"line 2: rho must be > 0, got -1000 kg/m³"),
    ("0 5.5 -1 2.4\n", r"line 1: vs must be >= 0"),
    ("0 5.5 3.18 2.4 200 0\n", r"line 1: qs must be > 0"),
    ("thickness vp vs rho\n0 5.5 3.18 2.4\n1 6 3.5 2.6\n",
     r"line 2: thickness must be > 0, got 0 m"),
    ("depth vp vs density colour\n0 5.5 3.18 2.4 1\n", r"line 1: unknown column 'colour'"),
    ("depth vp vs\n0 5.5 3.18\n", r"line 1: the header has no rho column"),
    ("depth thickness vp vs rho\n0 1 5.5 3.18 2.4\n", r"line 1: give depth or thickness"),
    ("depth vp(m) vs rho\n0 5.5 3.18 2.4\n", r"line 1: unit 'm' does not fit column vp"),
    ("# only comments\n\n", r"m.txt: no layer"),
])
def test_bad_tables_name_the_line(text, message):
    with pytest.raises(SpecfemFileError, match=message):
        parse_velocity_model(text, source="m.txt")


def test_an_unreadable_file(tmp_path):
    with pytest.raises(SpecfemFileError, match="cannot read the velocity model"):
        read_velocity_model(tmp_path / "missing.txt")
