"""The seed-paper reproduction benchmarks run end to end in --quick mode and write their JSON.

Smoke tests only: each script must run and write its JSON and plot; no figure is asserted
(quick runs use tiny data and models).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["memory", "robustness", "vae_tables"])
def test_paper_benchmark_quick_runs_and_writes_json(name, tmp_path):
    proc = subprocess.run(
        [sys.executable, f"benchmarks/{name}.py", "--quick", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["meta"]["quick"] is True
    assert (tmp_path / f"{name}.png").is_file()
