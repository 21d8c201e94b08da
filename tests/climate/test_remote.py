"""Remote inputs/outputs: WebDAV against a real wsgidav server, OPeNDAP against pydap."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cheroot import wsgi
from pydap.wsgi.app import DapServer
from webdav_server import WebDAVServer

from dare_cli.climate.errors import ClimateError, ClimateUsageError
from dare_cli.climate.remote import (
    RemoteLocation,
    credentials_for,
    default_cache_dir,
    fetch,
    is_opendap,
    is_webdav,
    resolve_inputs,
    stage_out,
)


def small_dataset() -> xr.Dataset:
    """Daily tasmax on a 2 x 3 grid for 10 days, values 0..59 + 273.15 K."""
    values = np.arange(60, dtype="float32").reshape(10, 2, 3) + np.float32(273.15)
    return xr.Dataset(
        {"tasmax": (("time", "lat", "lon"), values, {"units": "K"})},
        coords={
            "time": pd.date_range("2000-01-01", periods=10, freq="D"),
            "lat": [45.0, 46.0],
            "lon": [5.0, 6.0, 7.0],
        },
    )


@pytest.fixture
def remote_nc(webdav_credentials: WebDAVServer) -> tuple[WebDAVServer, str, xr.Dataset]:
    """A netCDF file on the server under ``data/tas.nc``; returns (server, ref, dataset)."""
    ds = small_dataset()
    (webdav_credentials.root / "data").mkdir()
    ds.to_netcdf(webdav_credentials.root / "data" / "tas.nc")
    return webdav_credentials, webdav_credentials.ref("data/tas.nc"), ds


@pytest.mark.parametrize(
    ("ref", "webdav", "opendap"),
    [
        ("webdav+https://b2drop.eudat.eu/remote.php/webdav/a/b.nc", True, False),
        ("davs://b2drop.eudat.eu/remote.php/webdav/b.nc", True, False),
        ("webdav+http://127.0.0.1:8080/b.nc", True, False),
        ("DAV://host/b.nc", True, False),
        ("https://thredds.example.org/thredds/dodsC/tas.nc", False, True),
        ("http://127.0.0.1/dap/tas.nc", False, True),
        ("/data/tas.nc", False, False),
        ("tas.nc", False, False),
        ("file:///data/tas.nc", False, False),
        ("ftp://host/tas.nc", False, False),
    ],
)
def test_classification(ref: str, webdav: bool, opendap: bool) -> None:
    assert is_webdav(ref) is webdav
    assert is_opendap(ref) is opendap


def test_location_maps_schemes_and_rejects_credentials() -> None:
    assert (
        RemoteLocation("davs://b2drop.eudat.eu/remote.php/webdav/x%20y.nc").http_url
        == "https://b2drop.eudat.eu/remote.php/webdav/x%20y.nc"
    )
    assert RemoteLocation("davs://b2drop.eudat.eu/remote.php/webdav/x%20y.nc").name == "x y.nc"
    assert RemoteLocation("webdav+http://h:81/a.nc").http_url == "http://h:81/a.nc"
    with pytest.raises(ClimateUsageError, match="contains credentials") as info:
        RemoteLocation("webdav+https://bob:hunter2@host/a.nc")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ClimateUsageError, match="does not name a file"):
        RemoteLocation("webdav+https://host/dir/")
    with pytest.raises(ClimateUsageError, match="not a WebDAV reference"):
        RemoteLocation("https://host/a.nc")


def test_fetch_with_env_credentials_opens_with_xarray(
    remote_nc: tuple[WebDAVServer, str, xr.Dataset], tmp_path: Path
) -> None:
    server, ref, ds = remote_nc
    local = fetch(ref, tmp_path / "cache")
    assert local.name == "tas.nc"
    assert local.read_bytes() == (server.root / "data" / "tas.nc").read_bytes()
    with xr.open_dataset(local) as got:
        xr.testing.assert_identical(got.load(), ds)
    # Only the file and its metadata in the cache: no leftover temporary file.
    assert sorted(p.name for p in local.parent.iterdir()) == [".meta.json", "tas.nc"]


def test_cache_hit_does_not_download_again(
    remote_nc: tuple[WebDAVServer, str, xr.Dataset], tmp_path: Path
) -> None:
    server, ref, ds = remote_nc
    first = fetch(ref, tmp_path / "cache")
    second = fetch(ref, tmp_path / "cache")
    assert first == second
    gets = [status for method, path, status in server.log if method == "GET"]
    assert gets == [200, 304]  # the second request is a conditional GET answered "not modified"
    # A changed remote file is downloaded again.
    changed = ds.assign(tasmax=ds.tasmax + 1)
    changed.to_netcdf(server.root / "data" / "tas.nc")
    # wsgidav's ETag is inode-mtime(s)-size: move the mtime on so the change is visible
    # even when the test rewrites the file within the same second.
    stat = (server.root / "data" / "tas.nc").stat()
    os.utime(server.root / "data" / "tas.nc", (stat.st_atime + 10, stat.st_mtime + 10))
    third = fetch(ref, tmp_path / "cache")
    assert third == first
    assert third.read_bytes() == (server.root / "data" / "tas.nc").read_bytes()
    assert [s for m, _, s in server.log if m == "GET"] == [200, 304, 200]


def test_credentials_from_netrc_file(
    webdav: WebDAVServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("DARE_WEBDAV_USER", "DARE_WEBDAV_PASSWORD", "DARE_WEBDAV_TOKEN", "NETRC"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    ref = webdav.ref("a.nc")
    assert credentials_for(ref) is None
    netrc_file = home / ".netrc"
    netrc_file.write_text(
        f"machine other.example.org login x password y\n"
        f"machine 127.0.0.1 login {webdav.user} password {webdav.password}\n"
    )
    netrc_file.chmod(0o600)
    assert credentials_for(ref) == (webdav.user, webdav.password)
    small_dataset().to_netcdf(webdav.root / "a.nc")
    assert fetch(ref, tmp_path / "cache").read_bytes() == (webdav.root / "a.nc").read_bytes()
    # $NETRC points elsewhere and wins over ~/.netrc.
    other = tmp_path / "other-netrc"
    other.write_text("machine 127.0.0.1 login bob password pw2\n")
    monkeypatch.setenv("NETRC", str(other))
    assert credentials_for(ref) == ("bob", "pw2")
    # The environment wins over netrc; a token stands for the password.
    monkeypatch.setenv("DARE_WEBDAV_USER", "carol")
    monkeypatch.setenv("DARE_WEBDAV_TOKEN", "app-token")
    assert credentials_for(ref) == ("carol", "app-token")


def test_incomplete_env_credentials_is_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARE_WEBDAV_USER", "carol")
    monkeypatch.delenv("DARE_WEBDAV_PASSWORD", raising=False)
    monkeypatch.delenv("DARE_WEBDAV_TOKEN", raising=False)
    with pytest.raises(ClimateUsageError, match="DARE_WEBDAV_PASSWORD"):
        credentials_for("webdav+https://host/a.nc")


def test_bad_netrc_names_file_not_contents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DARE_WEBDAV_USER", "DARE_WEBDAV_PASSWORD", "DARE_WEBDAV_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    bad = tmp_path / "netrc"
    bad.write_text("machine host login u password topsecret extra-garbage\n")
    monkeypatch.setenv("NETRC", str(bad))
    with pytest.raises(ClimateError, match="cannot read netrc file") as info:
        credentials_for("webdav+https://host/a.nc")
    assert "topsecret" not in str(info.value)


def test_wrong_password_is_clear_error_without_password(
    remote_nc: tuple[WebDAVServer, str, xr.Dataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ref, _ = remote_nc
    monkeypatch.setenv("DARE_WEBDAV_PASSWORD", "wrong-Passw0rd")
    with pytest.raises(ClimateError, match="HTTP 401") as info:
        fetch(ref, tmp_path / "cache")
    message = str(info.value)
    assert ref in message
    assert "wrong-Passw0rd" not in message
    assert server.password not in message
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.nc"))


def test_missing_file_names_url(webdav_credentials: WebDAVServer, tmp_path: Path) -> None:
    ref = webdav_credentials.ref("nowhere/missing.nc")
    with pytest.raises(ClimateError, match="HTTP 404") as info:
        fetch(ref, tmp_path / "cache")
    assert ref in str(info.value)


def test_unreachable_server_names_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    for var in ("DARE_WEBDAV_USER", "DARE_WEBDAV_PASSWORD", "DARE_WEBDAV_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    ref = "webdav+http://127.0.0.1:9/a.nc"  # discard port: nothing listens
    with pytest.raises(ClimateError, match="ConnectionError") as info:
        fetch(ref, tmp_path / "cache")
    assert ref in str(info.value)


def test_stage_out_creates_collections_and_uploads_bytes(
    webdav_credentials: WebDAVServer, tmp_path: Path
) -> None:
    server = webdav_credentials
    local = tmp_path / "out.nc"
    small_dataset().to_netcdf(local)
    stage_out(local, server.ref("results/2024/run 1/out.nc").replace(" ", "%20"))
    remote = server.root / "results" / "2024" / "run 1" / "out.nc"
    assert remote.read_bytes() == local.read_bytes()
    assert sorted(p.name for p in remote.parent.iterdir()) == ["out.nc"]  # no temporary left
    assert server.count("MKCOL") >= 3
    assert server.count("MOVE") == 1
    # Uploading again overwrites in place, without re-creating the collections.
    mkcols = server.count("MKCOL")
    local.write_bytes(b"replaced")
    stage_out(local, server.ref("results/2024/run%201/out.nc"))
    assert remote.read_bytes() == b"replaced"
    assert server.count("MKCOL") == mkcols + 1  # one MKCOL, answered 405 (exists)


@pytest.mark.parametrize("refused", ["MOVE", "PUT"])
def test_failed_upload_leaves_no_final_file(
    webdav_credentials: WebDAVServer, tmp_path: Path, refused: str
) -> None:
    server = webdav_credentials
    local = tmp_path / "out.nc"
    local.write_bytes(b"new contents")
    server.refuse.add(refused)
    ref = server.ref("results/out.nc")
    with pytest.raises(ClimateError, match="HTTP 500") as info:
        stage_out(local, ref)
    assert ref in str(info.value)
    assert server.password not in str(info.value)
    assert list((server.root / "results").iterdir()) == []  # neither final nor temporary file
    # An existing final file keeps its old contents.
    (server.root / "results" / "out.nc").write_bytes(b"old contents")
    with pytest.raises(ClimateError):
        stage_out(local, ref)
    assert [p.name for p in (server.root / "results").iterdir()] == ["out.nc"]
    assert (server.root / "results" / "out.nc").read_bytes() == b"old contents"


def test_stage_out_wrong_password(
    webdav_credentials: WebDAVServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DARE_WEBDAV_PASSWORD", "nope-nope")
    local = tmp_path / "out.nc"
    local.write_bytes(b"x")
    with pytest.raises(ClimateError, match="HTTP 401") as info:
        stage_out(local, webdav_credentials.ref("r/out.nc"))
    assert "nope-nope" not in str(info.value)
    assert not (webdav_credentials.root / "r").exists()


def test_stage_out_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(ClimateError, match="not a file"):
        stage_out(tmp_path / "absent.nc", "webdav+http://127.0.0.1:9/a.nc")


@pytest.fixture
def opendap_server(tmp_path: Path) -> Iterator[tuple[str, xr.Dataset]]:
    """A pydap OPeNDAP server on 127.0.0.1 serving ``tas.nc``; yields (URL, dataset)."""
    folder = tmp_path / "dap"
    folder.mkdir()
    ds = small_dataset()
    ds.to_netcdf(folder / "tas.nc")
    server = wsgi.Server(("127.0.0.1", 0), DapServer(str(folder)), numthreads=2)
    server.expiration_interval = 0.02  # seconds between polls; the default 0.5 slows stop()
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.bind_addr[1]}/tas.nc", ds
    finally:
        server.stop()
        thread.join(timeout=5)


def test_resolve_inputs_mixes_local_opendap_webdav(
    remote_nc: tuple[WebDAVServer, str, xr.Dataset],
    opendap_server: tuple[str, xr.Dataset],
    tmp_path: Path,
) -> None:
    _, webdav_ref, ds = remote_nc
    dap_url, _ = opendap_server
    local = tmp_path / "local.nc"
    ds.to_netcdf(local)
    resolved = resolve_inputs(
        [str(local), dap_url, webdav_ref, f"file://{local}"], tmp_path / "cache"
    )
    assert resolved[0] == str(local)
    assert resolved[1] == dap_url  # OPeNDAP: handed to xarray as it is
    assert resolved[2] == str(fetch(webdav_ref, tmp_path / "cache"))
    assert resolved[3] == str(local)
    for path in resolved:
        with xr.open_dataset(path, engine="netcdf4") as got:
            np.testing.assert_array_equal(got.tasmax.values, ds.tasmax.values)
            np.testing.assert_array_equal(got.time.values, ds.time.values)
            assert got.tasmax.attrs["units"] == "K"
    with pytest.raises(ClimateUsageError, match=r"unsupported input 'ftp://h/a\.nc'"):
        resolve_inputs(["ftp://h/a.nc"], tmp_path / "cache")


def test_default_cache_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "dare" / "climate"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "dare" / "climate"
