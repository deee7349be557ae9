"""The specs generate TypeScript types (openapi-typescript) that a typed client compiles against.

The pinned Node tools come from tools/package-lock.json (`make npm`, which `make test` runs
first). Both specs are generated into a temporary folder beside a copy of tests/ts/usage.ts,
which must compile with `tsc --strict --noEmit`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from spec_tools import ROOT, SPECS

TOOLS = ROOT / "tools"
USAGE = ROOT / "tests" / "ts" / "usage.ts"


def npx(*args: str) -> subprocess.CompletedProcess:
    """A pinned Node tool from tools/node_modules; `--no` forbids npx from downloading."""
    npx_bin = shutil.which("npx")
    assert npx_bin, "node and npm are required: install Node 20+"
    assert (TOOLS / "node_modules" / ".bin" / args[0]).exists(), "run `make npm` first"
    return subprocess.run(
        [npx_bin, "--no", "--", *args], cwd=TOOLS, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the usage file and the types generated from both specs."""
    folder = tmp_path_factory.mktemp("ts")
    shutil.copy(USAGE, folder / "usage.ts")
    for name, spec in SPECS.items():
        out = folder / "generated" / f"{name}.ts"
        result = npx("openapi-typescript", str(spec), "--output", str(out))
        assert result.returncode == 0 and out.exists(), result.stdout + result.stderr
    return folder


@pytest.mark.parametrize("name", SPECS)
def test_types_are_generated_for_every_operation(project: Path, name: str) -> None:
    """Each spec's generated types name each of its operations."""
    text = (project / "generated" / f"{name}.ts").read_text()
    assert "export interface paths" in text and "export interface operations" in text


def test_typed_usage_compiles_strictly(project: Path) -> None:
    """tests/ts/usage.ts compiles against the generated types with `tsc --strict --noEmit`."""
    flags = ["--strict", "--noEmit", "--target", "es2022", "--module", "esnext"]
    flags += ["--moduleResolution", "bundler", "--lib", "es2022,dom"]
    result = npx("tsc", *flags, str(project / "usage.ts"))
    assert result.returncode == 0, result.stdout + result.stderr
