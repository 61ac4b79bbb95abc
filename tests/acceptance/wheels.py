"""Hand-rolled wheels of tiny distributions, installed with pip and no network.

A wheel is a zip of the files, a METADATA, a WHEEL and a RECORD: what pip
needs to install it for real (dist-info, RECORD, entry points) without a build
backend or an index.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    files: Mapping[str, str],
    requires: Sequence[str] = (),
    entry_points: str = "",
) -> Path:
    """A py3-none-any wheel of `name` `version` holding `files` (paths in site-packages)."""
    stem = name.replace("-", "_")
    info = f"{stem}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents = dict(files)
    contents[f"{info}/METADATA"] = metadata
    contents[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if entry_points:
        contents[f"{info}/entry_points.txt"] = entry_points
    record = []
    for path, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}\n")
    record.append(f"{info}/RECORD,,\n")
    contents[f"{info}/RECORD"] = "".join(record)
    wheel = folder / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
    return wheel


def pip(venv: Path, *args: str) -> None:
    """pip (this interpreter's) acting on `venv`, offline."""
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")),
            *("--disable-pip-version-check", "--quiet", *args),
        ],
        check=True,
        capture_output=True,
    )


def install_offline(venv: Path, *wheels: Path) -> None:
    pip(venv, "install", "--no-index", "--no-deps", *map(str, wheels))


def uninstall(venv: Path, *names: str) -> None:
    pip(venv, "uninstall", "--yes", *names)
