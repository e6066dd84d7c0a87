"""The benchmark scripts run end to end in --quick mode and write their JSON.

Smoke tests only: they check that a script runs and writes well-formed output, never a figure
(timings on a shared CI machine mean nothing).
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ir_throughput_quick_runs_and_writes_json(tmp_path):
    proc = subprocess.run(
        [sys.executable, "benchmarks/ir_throughput.py", "--quick", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads((tmp_path / "ir_throughput.json").read_text())
    assert result["meta"]["quick"] is True
    assert result["results"], "no measurements recorded"
    assert all("error" not in row for row in result["results"])
    assert (tmp_path / "ir_throughput.png").is_file()
