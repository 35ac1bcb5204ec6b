"""deploy/: the SLURM job script and the Kubernetes Job start `nas worker` on one GPU against the study's storage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from nas.search.run.storage import open_storage
from nas.search.spec.studyfile_reader import load_study_file

ROOT = Path(__file__).resolve().parents[1]
SBATCH = ROOT / "deploy" / "slurm" / "nas-worker.sbatch"
JOB = ROOT / "deploy" / "kubernetes" / "nas-worker-job.yaml"
WORKER_LINE = 'exec "$NAS" worker "$STUDY" --storage "$NAS_STORAGE"'


def sbatch_options() -> dict[str, str]:
    """The script's #SBATCH options (not the switched-off ##SBATCH ones): name -> value."""
    options = {}
    for line in SBATCH.read_text().splitlines():
        if line.startswith("#SBATCH "):
            name, _, value = line.removeprefix("#SBATCH ").strip().partition("=")
            options[name] = value
    return options


def test_slurm_script_is_valid_bash_running_one_worker_on_one_gpu() -> None:
    check = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True)
    assert (check.returncode, check.stderr) == (0, "")
    options = sbatch_options()
    assert options["--gres"] == "gpu:1"
    assert not [name for name in options if name.startswith("--gpu")]  # no second way of asking for GPUs
    assert re.fullmatch(r"0-\d+(%\d+)?", options["--array"])
    lines = SBATCH.read_text().splitlines()
    assert [line for line in lines if "worker" in line and not line.startswith("#")] == [WORKER_LINE]
    (default,) = re.findall(r'^STUDY="\$\{STUDY:-(.+)\}"$', SBATCH.read_text(), flags=re.MULTILINE)
    study = load_study_file(ROOT / default)
    assert study.device == "cuda"


def test_slurm_script_refuses_to_start_without_a_storage_url() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NAS_STORAGE"}
    run = subprocess.run(["bash", str(SBATCH)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=30)
    assert run.returncode == 1
    assert "NAS_STORAGE: set NAS_STORAGE to the PostgreSQL URL of the study" in run.stderr
    assert run.stdout == ""  # stopped before anything ran


def job() -> dict[str, Any]:
    (document,) = list(yaml.safe_load_all(JOB.read_text()))
    assert isinstance(document, dict)
    return document


def test_kubernetes_job_runs_one_worker_per_gpu_with_the_storage_from_a_secret() -> None:
    manifest = job()
    assert (manifest["apiVersion"], manifest["kind"]) == ("batch/v1", "Job")
    spec = manifest["spec"]
    assert spec["parallelism"] == spec["completions"] >= 1
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:2] == ["nas", "worker"]
    assert command[command.index("--storage") + 1] == "$(NAS_STORAGE)"
    env = {e["name"]: e for e in container["env"]}
    assert env["NAS_STORAGE"]["valueFrom"]["secretKeyRef"]["key"] == "url"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in container["resources"].get("requests", {})
    study = load_study_file(ROOT / command[2])  # workingDir is a copy of this repository
    assert study.device == "cuda"
    assert {m["name"] for m in container["volumeMounts"]} == {v["name"] for v in pod["volumes"]}


@pytest.mark.slow
def test_slurm_script_runs_a_worker_that_completes_the_study(tmp_path: Path) -> None:
    """The script as SLURM runs it, on a one-trial digits study with a journal file for storage."""
    study = tmp_path / "tiny.toml"
    study.write_text(
        '[study]\nname = "tiny"\nspace = "connectivity_ablation"\ntrials = 1\ndevice = "cpu"\n'
        '[data]\nname = "digits"\n[recipe]\nepochs = 1\nbatch_size = 256\nmeasure_latency = false\n'
    )
    nas = tmp_path / "nas"
    nas.write_text(f'#!/bin/sh\nexec {sys.executable} -m nas.cli "$@"\n')
    nas.chmod(0o755)
    storage = tmp_path / "journal.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SLURM_SUBMIT_DIR": str(tmp_path),
        "SLURM_CPUS_PER_TASK": "1",
        "SLURM_ARRAY_TASK_ID": "3",
        "STUDY": str(study),
        "NAS": str(nas),
        "NAS_STORAGE": str(storage),
    }
    run = subprocess.run(["bash", str(SBATCH)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("task 3 of job ?")
    assert "[1/1] trial 0" in run.stdout
    loaded = optuna.load_study(study_name="tiny", storage=open_storage(str(storage)))
    assert [t.state.name for t in loaded.trials] == ["COMPLETE"]
