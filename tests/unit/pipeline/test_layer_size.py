"""The built layers stay within 200 MB unzipped (needs `sam build`; skipped otherwise)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUILD = ROOT / ".aws-sam" / "build"
SCRIPT = ROOT / "infra" / "layer_sizes.py"


def _load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("layer_sizes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not BUILD.exists(), reason="run sam build first")
def test_built_layers_are_within_200_mb():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--build-dir", str(BUILD)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ImagingLayer" in out.stdout
    # A stale or failed build leaves an empty folder: that must not pass as "small enough".
    site = BUILD / "ImagingLayer" / "python"
    missing = [
        name for name in ("PIL", "pyvips", "pillow_heif", "numpy") if not (site / name).is_dir()
    ]
    assert not missing, f"ImagingLayer lacks {missing}: rerun sam build"
    # the pipeline computes imagehash's hashes with numpy: neither it nor scipy/PyWavelets ship
    assert not [name for name in ("scipy", "pywt", "imagehash") if (site / name).exists()]


def test_the_script_flags_a_layer_over_the_limit(tmp_path):
    layer = tmp_path / "ImagingLayer" / "python"
    layer.mkdir(parents=True)
    (layer / "blob.bin").write_bytes(b"\0" * 300_000)
    (tmp_path / "CoreLayer").mkdir()
    (tmp_path / "CoreLayer" / "x.py").write_text("x = 1\n")
    module = _load_script()
    assert module.layer_sizes(tmp_path) == {"CoreLayer": 6, "ImagingLayer": 300_000}
    assert module.main(["--build-dir", str(tmp_path), "--limit-mb", "0.2"]) == 1
    assert module.main(["--build-dir", str(tmp_path), "--limit-mb", "1"]) == 0
    assert module.main(["--build-dir", str(tmp_path / "missing")]) == 2


def test_the_imaging_layer_source_has_no_python_dir():
    # sam build makes python/ for a BuildMethod layer; a source copy would shadow it
    assert not (ROOT / "layers" / "imaging" / "python").exists()
    makefile = (ROOT / "layers" / "imaging" / "Makefile").read_text()
    assert "build-ImagingLayer:" in makefile and "--platform manylinux2014_x86_64" in makefile
    text = (ROOT / "layers" / "imaging" / "requirements.txt").read_text()
    pins = [line.split("#")[0].strip().lower() for line in text.splitlines() if line.split("#")[0].strip()]
    assert pins and not [p for p in pins if p.startswith(("scipy", "pywavelets", "imagehash", "blurhash"))]
    assert "imagehash" not in makefile.lower()
