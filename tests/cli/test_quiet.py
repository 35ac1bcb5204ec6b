"""A normal run prints nothing of other libraries on stderr: no deprecation notice, no tracer warning.

Subprocesses, since pytest's own filterwarnings (pyproject.toml) hide these warnings in this process.
"""

from __future__ import annotations

from pathlib import Path

from tests.commands import nas

# One trial: the baseline, a small torchvision network. Counting its FLOPs imports fvcore, which scripts its
# losses with torch.jit on import; torch's FutureWarning about that was printed on every such run.
STUDY = """\
[study]
name = "quiet"
space = "connectivity_ablation"
objectives = ["val_accuracy", "params"]
trials = 1
device = "cpu"
baselines = ["torchvision:shufflenet_v2_x0_5"]

[data]
name = "digits"

[recipe]
epochs = 1
batch_size = 1024
measure_latency = false
"""


def test_run_with_its_report_and_arch_print_nothing_on_stderr(tmp_path: Path) -> None:
    study = tmp_path / "quiet.toml"
    study.write_text(STUDY)
    run = nas("run", str(study), "--storage", str(tmp_path / "journal.log"), "--out", str(tmp_path / "reports"))
    assert (run.returncode, run.stderr) == (0, "")
    assert "trial 0 torchvision:shufflenet_v2_x0_5 complete" in run.stdout
    assert (tmp_path / "reports" / "quiet.html").is_file()
    arch = nas("arch", "densenet121")
    assert (arch.returncode, arch.stderr) == (0, "")
