"""The README's quick start runs and prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_prints_what_the_readme_says():
    text = README.read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    expected = re.search(r"print\(.*\)\s+# (.*)", code).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert out.getvalue().strip() == expected
