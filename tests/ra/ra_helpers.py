"""Helpers of the Rapid Assessment tests: copies of the bundled example to break."""

from __future__ import annotations

import shutil
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "dare_cli" / "ra" / "examples" / "ridgecrest"


def example_config(folder: Path, out: Path, stations: list[str] | None = None,
                   extra: str = "") -> Path:
    """A copy of the example (optionally a few stations) with its config, writing to ``out``."""
    data = folder / "data"
    (data / "waveforms").mkdir(parents=True)
    (data / "stations").mkdir()
    shutil.copy(EXAMPLE / "event.xml", data / "event.xml")
    for path in sorted((EXAMPLE / "stations").glob("*.xml")):
        if stations is None or path.stem in stations:
            shutil.copy(path, data / "stations" / path.name)
            for mseed in (EXAMPLE / "waveforms").glob(f"{path.stem}..*.mseed"):
                shutil.copy(mseed, data / "waveforms" / mseed.name)
    text = (EXAMPLE / "ridgecrest.toml").read_text()
    text = text.replace('out = "ra-ridgecrest"', f'out = "{out}"')
    config = data / "ra.toml"
    config.write_text(text + extra)
    return config
