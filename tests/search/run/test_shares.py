"""What each worker of `nas run --workers` owns: the assignment rule, on faked GPUs and cores.

The real worker processes taking their shares are checked in tests/search/run/test_study.py
(test_two_workers_share_one_journal_each_on_its_own_gpu_and_cores).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nas.errors import UsageError
from nas.search.run.preflight import settings
from nas.search.run.shares import (
    WorkerShare,
    cap_loader_workers,
    plan_shares,
    visible_gpus,
    worker_device,
    worker_gpus,
)
from nas.search.spec.studyfile_reader import load_study_file

QUICKSTART = Path(__file__).resolve().parents[3] / "studies" / "quickstart.toml"


def owned(shares: list[WorkerShare]) -> list[tuple[str | None, tuple[int, ...], int, int, int]]:
    return [(s.gpu, s.cores, s.threads, s.interop_threads, s.loader_workers) for s in shares]


def test_gpus_round_robin_and_cores_in_disjoint_blocks() -> None:
    shares = plan_shares(workers=4, gpus=["3", "5"], cores=range(8))
    assert owned(shares) == [
        ("3", (0, 1), 2, 1, 1),
        ("5", (2, 3), 2, 1, 1),
        ("3", (4, 5), 2, 1, 1),
        ("5", (6, 7), 2, 1, 1),
    ]
    assert not any(s.cores_shared for s in shares)


def test_auto_is_one_worker_per_gpu_or_k_with_workers_per_gpu() -> None:
    assert owned(plan_shares(workers="auto", gpus=["0", "1"], cores=range(16))) == [
        ("0", tuple(range(8)), 8, 1, 7),
        ("1", tuple(range(8, 16)), 8, 1, 7),
    ]
    assert owned(plan_shares(workers="auto", gpus=["0", "1"], cores=range(16), workers_per_gpu=2)) == [
        ("0", (0, 1, 2, 3), 4, 1, 3),
        ("1", (4, 5, 6, 7), 4, 1, 3),
        ("0", (8, 9, 10, 11), 4, 1, 3),
        ("1", (12, 13, 14, 15), 4, 1, 3),
    ]
    # --workers N with K per GPU: N may be fewer than K per GPU, and the GPUs still alternate.
    assert [s.gpu for s in plan_shares(workers=3, gpus=["0", "1"], cores=range(6), workers_per_gpu=2)] == [
        "0",
        "1",
        "0",
    ]


def test_auto_without_gpus_is_one_worker_owning_every_core() -> None:
    assert owned(plan_shares(workers="auto", gpus=[], cores=[0, 1])) == [(None, (0, 1), 2, 1, 1)]


def test_cores_split_unevenly_and_only_the_cores_this_process_may_use() -> None:
    assert [s.cores for s in plan_shares(workers=3, gpus=[], cores=range(8))] == [(0, 1, 2), (3, 4, 5), (6, 7)]
    # A cgroup or taskset that narrowed the process to cores 2, 3, 6, 7: only those are handed out.
    assert [s.cores for s in plan_shares(workers=2, gpus=[], cores=[2, 3, 6, 7])] == [(2, 3), (6, 7)]


def test_more_workers_than_cores_share_them_with_one_thread_each() -> None:
    # Pinning two of three workers to one core would leave the other core idle once its worker waits.
    shares = plan_shares(workers=3, gpus=[], cores=[0, 1])
    assert owned(shares) == [(None, (0, 1), 1, 1, 0)] * 3
    assert all(s.cores_shared for s in shares)


@pytest.mark.parametrize(
    ("kwargs", "line"),
    [
        (dict(workers=0), "--workers = 0 is invalid: an integer >= 1 or auto is required"),
        (dict(workers=-2), "--workers = -2 is invalid: an integer >= 1 or auto is required"),
        (dict(workers="all"), "--workers = 'all' is invalid: an integer >= 1 or auto is required"),
        (
            dict(workers="auto", workers_per_gpu=0, gpus=["0"]),
            "--workers-per-gpu = 0 is invalid: an integer >= 1 is required",
        ),
        (
            dict(workers="auto", workers_per_gpu=2),
            "--workers-per-gpu = 2 is invalid: it needs GPUs, and the workers have none "
            "(the device is cpu, or no GPU is visible)",
        ),
        (
            dict(workers=5, workers_per_gpu=2, gpus=["0", "1"]),
            "--workers = 5 is invalid: at most 4: 2 per GPU on 2 GPU(s)",
        ),
    ],
)
def test_what_cannot_be_honoured_is_refused_in_one_line(kwargs: dict[str, object], line: str) -> None:
    arguments: dict[str, object] = {"gpus": [], "cores": [0, 1], **kwargs}
    with pytest.raises(UsageError) as info:
        plan_shares(**arguments)  # type: ignore[arg-type]
    assert str(info.value) == line


def test_the_device_decides_which_gpus_workers_spread_over() -> None:
    gpus = ["3", "5"]
    assert worker_gpus("cpu", gpus) == []  # a CPU study hides every GPU from its workers
    assert worker_gpus("auto", gpus) == gpus and worker_gpus("cuda", gpus) == gpus
    assert worker_gpus("cuda:1", gpus) == ["5"]  # cuda:N pins every worker to that one GPU ...
    assert worker_device("cuda:1") == "cuda" and worker_device("auto") == "auto"  # ... which it sees as cuda:0
    with pytest.raises(UsageError) as info:
        worker_gpus("cuda:2", gpus)
    assert str(info.value) == (
        "device = 'cuda:2' is invalid: this machine shows 2 GPU(s) (CUDA_VISIBLE_DEVICES or CUDA's count), "
        "numbered from cuda:0"
    )


@pytest.mark.parametrize(("listed", "gpus"), [("3,5", ["3", "5"]), (" 0 , 2 ,", ["0", "2"]), ("", [])])
def test_visible_gpus_read_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch, listed: str, gpus: list[str]) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
    assert visible_gpus() == gpus


def test_a_share_travels_to_its_worker_intact_and_sets_its_environment() -> None:
    share = plan_shares(workers=2, gpus=["GPU-8a1f"], cores=range(6), workers_per_gpu=2)[1]
    assert WorkerShare.from_json(share.to_json()) == share
    assert share.env() == {
        "CUDA_VISIBLE_DEVICES": "GPU-8a1f",
        "OMP_NUM_THREADS": "3",
        "MKL_NUM_THREADS": "3",
        "OPENBLAS_NUM_THREADS": "3",
    }
    assert (
        WorkerShare(gpu=None, cores=(0,), threads=1, interop_threads=1, loader_workers=0).env()["CUDA_VISIBLE_DEVICES"]
        == ""
    )  # sees no GPU at all


def test_loader_workers_are_capped_without_changing_the_study_settings() -> None:
    sf = load_study_file(QUICKSTART)
    sf = dataclasses.replace(sf, recipe=dataclasses.replace(sf.recipe, num_workers=4))
    capped = cap_loader_workers(sf, plan_shares(workers=2, gpus=[], cores=range(4))[0])
    assert (capped.recipe.num_workers, capped.data.num_workers) == (1, 1)
    assert settings(capped) == settings(sf)  # a resumed study is not refused for it
