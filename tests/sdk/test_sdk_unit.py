"""The SDK's multiplexer, hub and socket unit tests (node --test), run as part of pytest."""

import shutil
import subprocess
from pathlib import Path

SDK_DIR = Path(__file__).resolve().parents[2] / "sdk_js"


def test_sdk_unit_tests_pass():
    npm = shutil.which("npm")
    assert npm, "npm is not installed: bin/test installs Node 20 and npm"
    result = subprocess.run([npm, "test", "--silent"], cwd=SDK_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"npm test failed in sdk_js:\n{result.stdout}\n{result.stderr}"
    assert "# fail 0" in result.stdout
