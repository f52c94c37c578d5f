"""How many processes pre-compile by default: only where they can pay."""

from types import SimpleNamespace

import psutil
import pytest

import castbench.environment
from castbench.timing import compile_cache
from castbench.timing.compile_cache import BYTES_PER_JOB, default_jobs


@pytest.fixture
def host(monkeypatch):
    """A host of the given cores, free memory in jobs' worth, and GPUs."""

    def make(cores: int, jobs_of_memory: int = 64, gpus: int = 0) -> None:
        monkeypatch.setattr(compile_cache.os, "cpu_count", lambda: cores)
        memory = SimpleNamespace(available=jobs_of_memory * BYTES_PER_JOB)
        monkeypatch.setattr(psutil, "virtual_memory", lambda: memory)
        monkeypatch.setattr(castbench.environment, "gpu_info", lambda: [{}] * gpus)

    return make


def test_a_host_with_cores_to_spare_precompiles_on_each(host):
    host(cores=8)
    assert default_jobs() == 8


def test_memory_caps_the_processes(host):
    host(cores=8, jobs_of_memory=3)
    assert default_jobs() == 3


@pytest.mark.parametrize("cores", [1, 2])
def test_two_cores_or_fewer_do_not_precompile(host, cores):
    host(cores=cores)
    assert default_jobs() == 0


def test_memory_for_one_process_does_not_precompile(host):
    host(cores=8, jobs_of_memory=1)
    assert default_jobs() == 0


def test_a_gpu_host_does_not_precompile(host):
    host(cores=16, gpus=1)
    assert default_jobs() == 0
