"""pytest plugin: the timing matrix as pytest-benchmark tests, on castbench's own engine.

A test that asks for the ``timing_case`` fixture is parametrised over backbone x batch size x
mode. The case hands it a warmed-up step of :class:`~castbench.timing.engine.StepRunner` (the
compiled step unless ``--castbench-step api``), the very step ``castbench timing`` times, so
the two tools measure the same thing. One model is built per backbone group and reused by its
parametrisations; it is freed before the next one.

The plugin is loaded where it is asked for (``bench/conftest.py``, or ``-p
castbench.pytest_plugin``), not in every pytest session. Choose the matrix on the command line
(``--castbench-backbones``, ``--castbench-batches``, ``--castbench-size``, ...) or with the same
names as ``castbench_*`` keys under ``[tool.pytest.ini_options]`` / ``[pytest]``.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any

import pytest

from castbench.errors import CastbenchError
from castbench.timing.config import MODES, TimingConfig, build_matrix, default_modes

OPTIONS = {
    # name: (help, default)
    "backbones": ("backbones to benchmark, comma-separated, or 'all'", "all"),
    "batches": ("batch sizes, comma-separated", "2,4,8"),
    "size": ("input size: 'native' or pixels", "native"),
    "modes": (
        "train and/or infer, comma-separated (infer only with a serving runtime)",
        "train,infer",
    ),
    "runtimes": (
        "keras and/or serving runtimes (onnxruntime, litert, openvino), comma-separated",
        "keras",
    ),
    "precision": ("float32 | mixed_float16 | mixed_bfloat16", "float32"),
    "trainable": ("what a training step updates: all | head (backbone frozen)", "all"),
    "steps": ("timed steps (benchmark rounds) per case", "10"),
    "warmup": ("warm-up steps per case; the first one compiles", "2"),
    "step": ("the step timed: compiled (as a training loop runs it) | api", "compiled"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("castbench", "castbench timing matrix")
    for name, (help_text, default) in OPTIONS.items():
        flag = "--castbench-" + name.replace("_", "-")
        group.addoption(flag, dest=f"castbench_{name}", default=None,
                        help=f"{help_text} (default {default})")  # fmt: skip
        parser.addini(f"castbench_{name}", help_text, default=default)


def _setting(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"castbench_{name}")
    return str(value if value is not None else config.getini(f"castbench_{name}"))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def matrix_from_options(config: pytest.Config) -> list[TimingConfig]:
    size = _setting(config, "size")
    runtimes = _split(_setting(config, "runtimes"))
    modes = _split(_setting(config, "modes"))
    if config.getoption("castbench_modes") is None:  # not asked for: what the runtimes can time
        modes = [m for m in modes if m in default_modes(runtimes)]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise pytest.UsageError(f"unknown mode(s) {sorted(unknown)}; choose from {MODES}")
    try:
        batches = [int(b) for b in _split(_setting(config, "batches"))]
        return build_matrix(
            _split(_setting(config, "backbones")),
            batches,
            modes,
            None if size == "native" else int(size),
            runtimes=runtimes,
            precision=_setting(config, "precision"),
            trainable=_setting(config, "trainable"),
            steps=int(_setting(config, "steps")),
            warmup=int(_setting(config, "warmup")),
            step=_setting(config, "step"),
        )
    except (ValueError, CastbenchError) as exc:  # a bad number, name or size
        raise pytest.UsageError(f"castbench: {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    # Check a matrix given on the command line at once: a typo is a usage error (exit 4), not
    # a collection error buried in a report.
    if any(config.getoption(f"castbench_{name}") is not None for name in OPTIONS):
        matrix_from_options(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "timing_config" in metafunc.fixturenames:
        configs = matrix_from_options(metafunc.config)
        metafunc.parametrize("timing_config", configs, ids=[_case_id(c) for c in configs])


def _case_id(config: TimingConfig) -> str:
    case = f"{config.backbone}-{config.input_size}px-bs{config.batch_size}-{config.mode}"
    return case if config.runtime == "keras" else f"{case}-{config.runtime}"


@dataclass
class _ModelCache:
    """Holds the one model in use; building another frees the previous first."""

    key: tuple | None = None
    model: Any = None
    profile: dict = field(default_factory=dict)
    serving: Any = None  # the model's exports for serving runtimes (castbench.serving)

    def get(self, config: TimingConfig) -> tuple[Any, dict]:
        if config.model_key != self.key:
            self.release()
            from castbench.profile import profile_model
            from castbench.timing.engine import build_for_timing

            self.model = build_for_timing(config)
            self.profile = profile_model(self.model)
            self.key = config.model_key
        return self.model, self.profile

    def serving_bench(self, config: TimingConfig) -> Any:
        self.get(config)
        if self.serving is None:
            from castbench.serving.bench import ServingBench

            self.serving = ServingBench.for_config(self.model, config)
        return self.serving

    def release(self) -> None:
        if self.serving is not None:
            self.serving.close()
            self.serving = None
        if self.model is not None:
            import keras

            self.model = None
            keras.backend.clear_session()
            gc.collect()
        self.key = None


@pytest.fixture(scope="session")
def _castbench_models() -> Any:
    cache = _ModelCache()
    yield cache
    cache.release()


@dataclass
class TimingCase:
    """A warmed-up step and what the benchmark JSON should say about it."""

    config: TimingConfig
    runner: Any
    ready: Any  # engine.WarmUp of the timed step kind
    extra_info: dict[str, Any]

    def benchmark(self, benchmark: Any) -> None:
        """Time ``config.steps`` single steps with pytest-benchmark and complete extra_info
        from the same :class:`~castbench.timing.measurement.Measurement` the CLI derives its
        rows from."""
        from castbench.timing.measurement import Measurement, StepSamples

        benchmark.group = f"{self.config.backbone} {self.config.input_size}px"
        benchmark.extra_info.update(self.extra_info)
        kind = self.runner.kind
        try:
            benchmark.pedantic(self.runner.step, rounds=self.config.steps, iterations=1)
        finally:
            self.runner.finish()  # the next case's runner starts from the trained model
        samples = StepSamples(kind, tuple(self.ready.samples), tuple(benchmark.stats.stats.data))
        measurement = Measurement(self.config, {kind: samples}, self.ready.compile,
                                  gflops_per_image=self.extra_info["gflops_per_image"])  # fmt: skip
        benchmark.extra_info.update(
            images_per_s=measurement.images_per_s,
            epoch_s=measurement.epoch_s,
            compile_s=measurement.compile_s,
            compile_cache_hit=measurement.compile.cache_hit,
            achieved_gflops_per_s=measurement.achieved_gflops_per_s,
        )


@pytest.fixture
def timing_case(timing_config: TimingConfig, _castbench_models: _ModelCache) -> TimingCase:
    import keras

    from castbench.environment import device_name
    from castbench.results import row_header
    from castbench.timing.engine import StepRunner
    from castbench.timing.timer import warm_up

    serving: dict[str, Any] = {}
    if timing_config.runtime == "keras":
        model, profile = _castbench_models.get(timing_config)
        runner = StepRunner(model, timing_config)
        serving["runtime_version"] = keras.__version__
    else:
        runner, serving = _serving_runner(timing_config, _castbench_models)
        model, profile = _castbench_models.get(timing_config)
    ready = warm_up(runner, runner.kind)
    extra = {
        **row_header(timing_config, device_name(), keras.backend.backend()),
        "jit_resolved": bool(getattr(runner.model, "jit_compile", False)),
        "params_total": profile["params_total"],
        "params_trainable": profile["params_trainable"],
        "gflops_per_image": profile["gflops_per_image"],
        "first_step_s": ready.samples[0],
        "warmup_s": ready.samples,
        **serving,
    }
    return TimingCase(timing_config, runner, ready, extra)


def _serving_runner(config: TimingConfig, models: _ModelCache) -> tuple[Any, dict[str, Any]]:
    """A serving runtime's gated step; skips without the runtime, fails on a mismatch."""
    from castbench.serving.registry import MissingExtra, require_runtime

    try:
        require_runtime(config.runtime)
    except MissingExtra as exc:
        pytest.skip(str(exc))
    prepared = models.serving_bench(config).prepare(config)
    if prepared.runner is None:
        pytest.fail(prepared.fields["error"], pytrace=False)
    fields = {k: v for k, v in prepared.fields.items() if k != "status"}
    return prepared.runner, fields
