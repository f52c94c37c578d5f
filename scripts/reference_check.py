"""castbench's figures side by side with an independent reference, on this machine, in one
interleaved run (A B A B ...), so that the machine's drift hits both alike.

Sections (each writes OUT/<section>.csv and prints a table; run them one at a time, on an
otherwise idle machine, and keep the load average printed beside them):

* ``keras``: castbench's step (``StepRunner`` timed by the engine's own timed phase, the code
  behind every Keras row) against a plain ``train_on_batch`` / ``predict_on_batch`` loop on the
  same model, the two alternating every few steps within each round, as ``timm`` below; under
  the backend of ``KERAS_BACKEND``.
* ``wall``: the whole ``castbench timing`` command against a plain Keras script doing the same
  work (build, warm-up, the same timed and pipelined steps) for the same configurations, as
  whole processes, alternating.
* ``timm``: ``castbench peer timm --device cpu``'s step, timed by castbench's own timed phase,
  against a plain timm loop written here from timm's documented API (create_model, Adam,
  BCEWithLogitsLoss), the two alternating every few steps within each round; the figure is
  the median of all castbench steps over the median of all the loop's.
* ``timm-null``: the plain timm loop against a second instance of itself, timed as ``timm``
  times its sides: how far from 1 a ratio strays here when nothing differs.
* ``serving``: castbench's serving step (the gated session a ``--runtime`` row times) against
  each runtime's own benchmark tool on the same artifact, batch 1, float32, the same threads:
  OpenVINO's ``benchmark_app`` (median, ``-hint none -infer_precision f32``), LiteRT's
  ``litert-benchmark`` (its reported latency) and ONNX Runtime's ``onnxruntime_test`` (a mean
  over its runs, so castbench's mean is the figure set beside it); whole rounds alternate, as
  the tools run as processes of their own.

``--round-seconds S`` (keras, timm, timm-null, serving) makes each round last S seconds a side
at least, taking more steps where steps are short.
* ``spin``: not a check but a setting: ONNX Runtime's latency with its intra-op threads
  spinning (its default and castbench's) against spinning off, batch 1, the same threads.

    python scripts/reference_check.py keras --out results/reference-check --rounds 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from castbench.commands.matrix_options import size_choice
from castbench.files import atomic_write_text, csv_text

BACKBONES = ("ResNet50", "MobileNetV2")
BATCHES = (2, 8)
MODES = ("train", "infer")
SIZE = 224
GOAL = (0.95, 1.05)


def load_1m() -> float:
    return round(os.getloadavg()[0], 2)


def configs(args: argparse.Namespace) -> list[Any]:
    from castbench.timing.config import TimingConfig

    return [TimingConfig(b, args.size, bs, mode=m, steps=args.steps, warmup=args.warmup)
            for b in args.backbones for m in MODES for bs in args.batches]  # fmt: skip


def plain_keras_side(model: Any, config: Any, images: Any, labels: Any) -> Side:
    """What a user would write: warm up, then time each call."""
    call = (lambda: model.train_on_batch(images, labels)) if config.mode == "train" else (
        lambda: model.predict_on_batch(images))  # fmt: skip

    time_calls = partial(plain_timed, call)
    return Side(time_calls(config.warmup), time_calls, dict)


def plain_timed(call: Callable[[], Any], count: int) -> list[float]:
    """The references' own clock, apart from castbench's ``timed_steps``: each call timed."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def keras_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    import keras
    import numpy as np

    from castbench.timing.engine import StepRunner, build_for_timing

    models: dict[Any, Any] = {}

    def model_for(config: Any) -> Any:
        if config.model_key not in models:
            models.clear()  # one model in memory at a time
            models[config.model_key] = build_for_timing(config)
        return models[config.model_key]

    def castbench_side(config: Any) -> Side:
        return timed_phase_side(StepRunner(model_for(config), config))

    def plain_side(config: Any) -> Side:
        batch = StepRunner(model_for(config), config).batch
        images, labels = np.asarray(batch.images), np.asarray(batch.labels)
        return plain_keras_side(model_for(config), config, images, labels)

    return _sliced_rows(args, castbench_side, plain_side, ("castbench step", "plain Keras loop"),
                        backend=keras.backend.backend())  # fmt: skip


def interleaved(rounds: int, ours: Callable[[], Any], theirs: Callable[[], Any]
                ) -> tuple[list[Any], list[Any], list[float]]:  # fmt: skip
    """Both sides ``rounds`` times, castbench first in even rounds and second in odd ones, so
    that the machine's drift hits both alike; with the 1-minute load at each round's start."""
    results: tuple[list[Any], list[Any]] = ([], [])
    load = []
    for index in range(rounds):
        load.append(load_1m())
        order = (0, 1) if index % 2 == 0 else (1, 0)
        for side in order:
            results[side].append((ours, theirs)[side]())
    return results[0], results[1], load


def _ratio_row(config: Any, ours_name: str, theirs_name: str, ours: list[float],
               theirs: list[float], load: list[float], **extra: Any) -> dict[str, Any]:  # fmt: skip
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    median = statistics.median(ratios)
    return {
        "backbone": config.backbone, "input_size": config.input_size,
        "batch_size": config.batch_size, "mode": config.mode, **extra,
        "rounds": len(ratios), "ours": ours_name, "reference": theirs_name,
        "ours_median_ms": round(statistics.median(ours) * 1e3, 2),
        "reference_median_ms": round(statistics.median(theirs) * 1e3, 2),
        "ratio_median": round(median, 4), "ratio_min": round(min(ratios), 4),
        "ratio_max": round(max(ratios), 4),
        "round_ratios": " ".join(f"{r:.3f}" for r in ratios),
        "within_goal": GOAL[0] <= median <= GOAL[1],
        "load_1m_max": max(load),
    }  # fmt: skip


def _line(row: dict[str, Any]) -> str:
    pooled = f"pooled {row['ratio']:.3f}  " if "ratio" in row else ""
    return (pooled + f"{row['backbone']:<12} bs {row['batch_size']:<2} {row['mode']:<5} "
            f"ours {row['ours_median_ms']:>9.2f} ms  reference {row['reference_median_ms']:>9.2f} "
            f"ms  ratio {row['ratio_median']:.3f} [{row['ratio_min']:.3f}-{row['ratio_max']:.3f}]"
            f"  load {row['load_1m_max']}")  # fmt: skip


PLAIN_SCRIPT = """
import statistics, sys, time
import numpy as np
from castbench.timing.config import TimingConfig
from castbench.timing.engine import build_for_timing
from castbench.timing.measurement import PIPELINE_ROUNDS, pipeline_depth
from castbench import backbones as registry
names, size_arg = sys.argv[1].split(","), sys.argv[2]
batches = [int(b) for b in sys.argv[3].split(",")]
steps, warmup = int(sys.argv[4]), int(sys.argv[5])
for backbone in registry.resolve(names):
    name = backbone.name
    size = backbone.native_size if size_arg == "native" else int(size_arg)
    model = None  # one model per backbone, as castbench builds one per model group
    for mode in ("train", "infer"):
        for bs in batches:
            config = TimingConfig(name, size, bs, mode=mode, steps=steps, warmup=warmup)
            model = model or build_for_timing(config)
            rng = np.random.default_rng(0)
            x = rng.uniform(-1, 1, (bs, size, size, 3)).astype("float32")
            y = rng.integers(0, 2, (bs, 1)).astype("float32")
            call = (lambda: model.train_on_batch(x, y)) if mode == "train" else (
                lambda: model.predict_on_batch(x))
            for _ in range(warmup + steps + PIPELINE_ROUNDS * pipeline_depth(steps)):
                call()
"""


def wall_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Whole processes: castbench timing against the plain script, alternating."""
    env = {**os.environ, "CASTBENCH_COMPILE_CACHE": "off"}
    names = ",".join(args.backbones)
    size = "native" if args.size is None else str(args.size)
    batches = ",".join(map(str, args.batches))
    rows = []
    for round_index in range(args.rounds):
        order = ("castbench", "loop") if round_index % 2 == 0 else ("loop", "castbench")
        for tool in order:
            out = args.out / "wall-runs" / f"{tool}-{round_index + 1}"
            if tool == "castbench":
                argv = [sys.executable, "-m", "castbench", "timing", "--backbones",
                        *args.backbones, "--size", size, "--batch",
                        *map(str, args.batches), "--steps", str(args.steps), "--warmup",
                        str(args.warmup), "--out", str(out)]  # fmt: skip
                argv += [] if args.plots else ["--no-plots"]
            else:
                argv = [sys.executable, "-c", PLAIN_SCRIPT, names, size, batches,
                        str(args.steps), str(args.warmup)]  # fmt: skip
            load = load_1m()
            start = time.perf_counter()
            done = subprocess.run(argv, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode not in (0, 1):
                sys.exit(f"{tool} failed: {done.stderr[-2000:]}")
            rows.append({"round": round_index + 1, "tool": tool, "wall_s": round(wall, 1),
                         "load_1m_at_start": load, "exit": done.returncode})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def timm_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    from castbench.peer.names import timm_name
    from castbench.peer.sweep import PeerStepRunner
    from castbench.peer.torch_runner import TorchRunner

    runner = TorchRunner(device="cpu")

    def castbench_side(config: Any) -> Side:
        model = runner.load(timm_name(config.backbone))
        side = timed_phase_side(PeerStepRunner(model.step(config), config))
        return replace(side, close=lambda: {**side.close(), **(model.close() or {})})

    return _timm_rows(args, castbench_side, "castbench peer timm")


def timed_phase_side(runner: Any) -> Side:
    """castbench's side: the runner warmed up and timed by the engine's own timed phase
    (``warm_up`` and ``PrimaryPhase``, the code inside ``measure``, probes and recompile guard
    on), a slice at a time; closing reports how often it recompiled while timed."""
    from castbench.timing.timer import PrimaryPhase, warm_up

    ready = warm_up(runner, runner.kind)
    phase = PrimaryPhase(runner)

    def time_slice(count: int) -> list[float]:
        before = len(phase.samples)
        phase.time(count)
        return phase.samples[before:]

    def close() -> dict[str, Any]:
        runner.steps[runner.kind].finish()
        return {"recompiled": phase.result().recompiles}

    return Side(ready.samples, time_slice, close)


def timm_null_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The plain timm loop against a second instance of itself, timed exactly as the timm
    section times its two sides: the figure a ratio of 1 scatters by on this machine."""
    from castbench.peer.names import timm_name

    def second_plain(config: Any) -> Side:
        plain = PlainTimm(timm_name(config.backbone), config)
        return Side(plain.warm_up(), plain.time, dict)

    return _timm_rows(args, second_plain, "plain timm loop (second instance)")


@dataclass(frozen=True)
class Side:
    """One side of a sliced comparison: its warm-up step times, a call timing ``count`` more
    steps, and one releasing it that returns columns for the row."""

    warm_up_s: list[float]
    time: Callable[[int], list[float]]
    close: Callable[[], dict[str, Any]]


def _timm_rows(args: argparse.Namespace, ours_for: Callable[[Any], Side], ours_name: str
               ) -> list[dict[str, Any]]:  # fmt: skip
    import torch

    from castbench.peer.names import timm_name

    torch.set_num_threads(os.cpu_count() or 1)

    def plain(config: Any) -> Side:
        loop = PlainTimm(timm_name(config.backbone), config)
        return Side(loop.warm_up(), loop.time, dict)

    return _sliced_rows(args, ours_for, plain, (ours_name, "plain timm loop"), backend="torch")


def _sliced_rows(args: argparse.Namespace, ours_for: Callable[[Any], Side],
                 theirs_for: Callable[[Any], Side], names: tuple[str, str], **extra: Any
                 ) -> list[dict[str, Any]]:  # fmt: skip
    """Per configuration, both sides warmed up, then timed in alternating slices."""
    rows = []
    for config in configs(args):
        ours, theirs = ours_for(config), theirs_for(config)
        steps = steps_per_round(args, min(ours.warm_up_s))
        ours_rounds, theirs_rounds, load = sliced(args.rounds, steps, ours.time, theirs.time)
        columns = {**extra, **theirs.close(), **ours.close()}
        rows.append(_pooled_row(config, *names, ours_rounds, theirs_rounds, load,
                                steps_per_round=steps, **columns))  # fmt: skip
        print(_line(rows[-1]), flush=True)
    return rows


def steps_per_round(args: argparse.Namespace, step_s: float) -> int:
    """``--steps``, or more where the steps are short: a round lasts ``--round-seconds`` per
    side at least, as pyperf calibrates its loops, so that short steps are not timed over a
    fraction of a second that one burst on the machine can fill."""
    return max(args.steps, math.ceil(args.round_seconds / step_s))


def sliced(rounds: int, steps: int, ours: Callable[[int], list[float]],
           theirs: Callable[[int], list[float]]) -> tuple[list[list[float]], list[list[float]],
                                                          list[float]]:  # fmt: skip
    """``rounds`` rounds of ``steps`` timed steps a side, each round cut into slices of
    castbench's own ``INTERLEAVED_SLICE`` steps that alternate between the sides (the one
    going first alternating too): drift on the machine hits both alike even within a round,
    where whole-round blocks leave each side's median to seconds of its own. Both sides are
    warmed up before; each side's step times per round, and the 1-minute load at each start."""
    from castbench.timing.timer import INTERLEAVED_SLICE

    results: tuple[list[list[float]], list[list[float]]] = ([], [])
    load = []
    turn = 0
    for _ in range(rounds):
        load.append(load_1m())
        got: tuple[list[float], list[float]] = ([], [])
        for done in range(0, steps, INTERLEAVED_SLICE):
            count = min(INTERLEAVED_SLICE, steps - done)
            for side in (0, 1) if turn % 2 == 0 else (1, 0):
                got[side].extend((ours, theirs)[side](count))
            turn += 1
        results[0].append(got[0])
        results[1].append(got[1])
    return results[0], results[1], load


def _pooled_row(
    config: Any,
    ours_name: str,
    theirs_name: str,
    ours: list[list[float]],
    theirs: list[list[float]],
    load: list[float],
    **extra: Any,
) -> dict[str, Any]:
    """The figure set against the goal is the median of all of one side's timed steps over
    that of the other's (``ratio``); the per-round ratios show its spread."""
    row = _ratio_row(config, ours_name, theirs_name, [statistics.median(r) for r in ours],
                     [statistics.median(r) for r in theirs], load, **extra)  # fmt: skip
    all_ours, all_theirs = sum(ours, []), sum(theirs, [])
    ratio = statistics.median(all_ours) / statistics.median(all_theirs)
    row.update(ours_median_ms=round(statistics.median(all_ours) * 1e3, 2),
               reference_median_ms=round(statistics.median(all_theirs) * 1e3, 2),
               ratio=round(ratio, 4), within_goal=GOAL[0] <= ratio <= GOAL[1])  # fmt: skip
    return row


class PlainTimm:
    """timm's model with a one-unit classifier, trained with Adam on BCEWithLogitsLoss, written
    from timm's and PyTorch's documented API only. Seeded as castbench seeds its peer model
    (timm builds the backbone before the classifier), so both time the same backbone weights:
    random weights set the activations' magnitudes, which can change a CPU's speed."""

    def __init__(self, name: str, config: Any) -> None:
        import timm
        import torch

        torch.manual_seed(0)
        self.torch = torch
        self.config = config
        self.model = timm.create_model(name, pretrained=False, num_classes=1)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss = torch.nn.BCEWithLogitsLoss()
        shape = (config.batch_size, 3, config.input_size, config.input_size)
        self.x = torch.rand(shape) * 2 - 1
        self.y = torch.randint(0, 2, (config.batch_size, 1)).float()

    def step(self) -> None:
        if self.config.mode == "train":
            self.model.train()
            self.optimizer.zero_grad()
            self.loss(self.model(self.x), self.y).backward()
            self.optimizer.step()
        else:
            self.model.eval()
            with self.torch.inference_mode():
                self.model(self.x)

    def warm_up(self) -> list[float]:
        return self.time(self.config.warmup)

    def time(self, count: int) -> list[float]:
        return plain_timed(self.step, count)


SERVING_THREADS = 2


def serving_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per backbone and runtime, castbench's timed session and the runtime's own tool in turn."""
    from castbench.serving.bench import ServingBench
    from castbench.serving.registry import require_runtime
    from castbench.timing.config import TimingConfig
    from castbench.timing.engine import build_for_timing
    from castbench.timing.timer import measure

    rows = []
    for backbone in args.backbones:
        base = TimingConfig(backbone, args.size, 1, mode="infer", steps=args.steps,
                            warmup=args.warmup, threads=SERVING_THREADS)  # fmt: skip
        bench = ServingBench(build_for_timing(base), folder=str(args.out / "artifacts"))
        for runtime, tool in SERVING_TOOLS.items():
            config = replace(base, runtime=runtime)
            prepared = bench.prepare(config)
            if prepared.runner is None:
                sys.exit(f"{backbone} {runtime}: {prepared.fields['error']}")
            artifact = bench.artifact(require_runtime(runtime).format, config)
            first = measure(prepared.runner)  # sizes the rounds; not a sample
            steps = steps_per_round(args, first.primary.median)
            runner = prepared.runner
            runner.config = replace(runner.config, steps=steps)  # measure reads its steps here
            ours, theirs, load = interleaved(
                args.rounds,
                partial(lambda t, r: t.statistic(measure(r).primary.samples_s), tool, runner),
                partial(tool.run, artifact.path, args, steps))  # fmt: skip
            rows.append(_ratio_row(config, f"castbench {runtime} ({tool.statistic.__name__})",
                                   tool.name, ours, theirs, load, runtime=runtime,
                                   threads=SERVING_THREADS, gate=prepared.fields["status"],
                                   settings=prepared.fields["runtime_settings"],
                                   steps_per_round=steps,
                                   tool_command=" ".join(tool.argv(Path(artifact.path).name,
                                                                   args, steps))))  # fmt: skip
            rows[-1]["within_goal"] = SERVING_GOAL[0] <= rows[-1]["ratio_median"] <= SERVING_GOAL[1]
            print(_line(rows[-1]), f"{runtime} vs {tool.name}", flush=True)
        bench.close()
    return rows


SERVING_GOAL = (0.90, 1.10)


def spin_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """ONNX Runtime with its intra-op threads spinning between operators (its default, and
    castbench's) against the same session with spinning off, batch 1, the same threads: what
    the busy-waiting buys in latency. Not a check of castbench; a setting a deployment chooses."""
    import numpy as np

    from castbench.serving.bench import ServingBench
    from castbench.timing.config import TimingConfig
    from castbench.timing.engine import build_for_timing

    rows = []
    for backbone in args.backbones:
        config = TimingConfig(backbone, args.size, 1, mode="infer", steps=args.steps,
                              warmup=args.warmup, runtime="onnxruntime",
                              threads=SERVING_THREADS)  # fmt: skip
        bench = ServingBench(build_for_timing(config), folder=str(args.out / "artifacts"))
        artifact = bench.artifact("onnx", config)
        image = np.random.default_rng(0).uniform(-1, 1, (1, args.size, args.size, 3))
        image = image.astype("float32")
        latency = partial(_ort_latency, artifact, image, args)
        on, off, load = interleaved(args.rounds, partial(latency, True), partial(latency, False))
        rows.append(_ratio_row(config, "spinning on", "spinning off", on, off, load,
                               runtime="onnxruntime", threads=SERVING_THREADS))  # fmt: skip
        del rows[-1]["within_goal"]  # a comparison of two settings, not a check
        print(_line(rows[-1]), "spin on vs off", flush=True)
        bench.close()
    return rows


def _ort_latency(artifact: Any, image: Any, args: argparse.Namespace, spinning: bool) -> float:
    """Median seconds of ``args.steps`` runs in a fresh session, after ``args.warmup``."""
    from castbench.serving.sessions import open_session
    from castbench.timing.timer import timed_steps

    session = open_session("onnxruntime", artifact, 1, SERVING_THREADS, spinning=spinning)
    timed_steps(lambda: session.run(image), args.warmup)
    return statistics.median(timed_steps(lambda: session.run(image), args.steps))


@dataclass(frozen=True)
class RuntimeTool:
    """A runtime's own benchmark tool: how to call it, and how to read its latency (seconds)."""

    name: str
    argv: Callable[[str, argparse.Namespace, int], list[str]]  # model, options, timed runs
    read: Callable[[str, Path], float]
    statistic: Callable[[Any], float]  # castbench's figure of the same kind

    def run(self, model: Path, args: argparse.Namespace, steps: int) -> float:
        with tempfile.TemporaryDirectory() as scratch:
            argv = self.argv(str(model), args, steps) + _json_flag(self.name, scratch)
            done = subprocess.run(argv,
                                  capture_output=True, text=True)  # fmt: skip
            if done.returncode != 0:
                sys.exit(f"{self.name} failed: {(done.stderr or done.stdout)[-2000:]}")
            return self.read(done.stdout, Path(scratch))


def _json_flag(tool: str, scratch: str) -> list[str]:
    if tool != "litert-benchmark":
        return []
    return ["--result_json", str(Path(scratch) / "result.json")]


def _benchmark_app_median(stdout: str, _: Path) -> float:
    # "[ INFO ]    Median:     12.34 ms" under "Latency:"
    match = re.search(r"Median:\s+([0-9.]+) ms", stdout)
    if match is None:
        sys.exit(f"benchmark_app printed no median latency:\n{stdout[-2000:]}")
    return float(match.group(1)) / 1e3


def _litert_median(stdout: str, scratch: Path) -> float:
    result = json.loads((scratch / "result.json").read_text())
    return result["latency"]["median_ms"] / 1e3


def _onnxruntime_test_mean(stdout: str, _: Path) -> float:
    match = re.search(r"avg latency: ([0-9.]+) ms", stdout)
    if match is None:
        sys.exit(f"onnxruntime_test printed no latency:\n{stdout[-2000:]}")
    return float(match.group(1)) / 1e3


def median(samples: Any) -> float:
    return statistics.median(samples)


def mean(samples: Any) -> float:
    return statistics.fmean(samples)


def _tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


SERVING_TOOLS = {
    "onnxruntime": RuntimeTool(
        "onnxruntime_test",
        # its session: default options (every graph optimisation, one intra-op thread per
        # physical core: 2 here, as castbench's) and no warm-up, so many runs amortise the first
        lambda model, args, steps: [_tool("onnxruntime_test"), model, str(steps * 4)],
        _onnxruntime_test_mean,
        mean,
    ),
    "litert": RuntimeTool(
        "litert-benchmark",
        lambda model, args, steps: [
            _tool("litert-benchmark"),
            "--model",
            model,
            "--use_cpu",
            "--num_threads",
            str(SERVING_THREADS),
            "--num_runs",
            str(steps),
            "--warmup_runs",
            str(args.warmup),
        ],  # fmt: skip
        _litert_median,
        median,
    ),
    "openvino": RuntimeTool(
        "benchmark_app",
        lambda model, args, steps: [
            _tool("benchmark_app"),
            "-m",
            model,
            "-d",
            "CPU",
            "-hint",
            "none",
            "-infer_precision",
            "f32",
            "-nthreads",
            str(SERVING_THREADS),
            "-nstreams",
            "1",
            "-api",
            "sync",
            "-shape",
            f"[1,{args.size},{args.size},3]",
            "-niter",
            str(steps),
        ],
        _benchmark_app_median,
        median,
    ),
}


SECTIONS = {"keras": keras_section, "wall": wall_section, "timm": timm_section,
            "timm-null": timm_null_section, "serving": serving_section,
            "spin": spin_section}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("section", choices=SECTIONS)
    parser.add_argument("--out", type=Path, default=Path("results/reference-check"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--round-seconds",
        type=float,
        default=0.0,
        help="timm, timm-null, serving: more steps a round where steps are short, so that a "
        "round lasts this long a side",
    )
    parser.add_argument(
        "--size",
        type=size_choice,  # None: native
        default=SIZE,
        help="pixels, or native: each backbone's own (wall only)",
    )
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument(
        "--plots",
        action="store_true",
        help="wall: castbench draws its plots too, as the README's command does",
    )
    parser.add_argument("--tag", default="", help="suffix of the CSV's name (e.g. the backend)")
    args = parser.parse_args()
    if args.size is None and args.section != "wall":
        parser.error("--size native is for the wall section only")
    args.out.mkdir(parents=True, exist_ok=True)
    started = load_1m()
    rows = SECTIONS[args.section](args)
    name = f"{args.section}{'-' + args.tag if args.tag else ''}.csv"
    atomic_write_text(args.out / name, csv_text(rows))
    print(f"{args.out / name}: {len(rows)} rows; load 1m {started} at start, {load_1m()} at end")


if __name__ == "__main__":
    main()
