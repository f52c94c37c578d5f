"""How close do castbench's steps come to the plainest loop of the same model? One process:

1. the engine's own loop cost per step (clock reads, bookkeeping) on a step that does nothing;
2. the engine's compiled and API steps against two hand-written references on the same model
   and batch: a plain loop of ``train_on_batch`` / ``predict_on_batch`` and, under JAX, one
   jitted stateless step (``stateless_call`` + ``jax.value_and_grad`` +
   ``optimizer.stateless_apply``, state donated). The four are interleaved in rounds, the order
   rotating, so drift hits all alike.

    python scripts/engine_overhead.py [--backbone mobilenetv2] [--size 96] [--batch 4] \
        [--mode train infer] [--rounds 5] [--steps 20] [--no-keras-loop] [--json out.json]

Several modes share one built model; with --json the file is rewritten after each mode, so a
run stopped part-way keeps the modes it finished. --no-keras-loop leaves out the plain loop,
whose ``train_on_batch`` compiles a step of its own (the compiled and API steps share one).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import keras

from castbench import backbones
from castbench.runtime import start_quietly
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner, build_for_timing


class KerasLoop:
    """The plain per-call loop a user writes."""

    def __init__(self, model: keras.Model, mode: str, batch) -> None:
        self.call = lambda: (model.train_on_batch(batch.images, batch.labels) if mode == "train"
                             else model.predict_on_batch(batch.images))  # fmt: skip

    def __call__(self) -> None:
        self.call()
        if keras.backend.backend() == "jax":  # API calls return host values; updates trail
            import jax

            jax.effects_barrier()

    def finish(self) -> None:
        return None


class JaxStatelessStep:
    """The same model as one jitted stateless function, written by hand."""

    def __init__(self, model: keras.Model, mode: str, batch) -> None:
        import jax

        self.model, self.mode, self.batch = model, mode, batch
        self.state: tuple | None = None
        if mode == "infer":
            self.function = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x)[0])
            return

        def loss_fn(trainable, non_trainable, x, y):
            y_pred, non_trainable = model.stateless_call(trainable, non_trainable, x,
                                                         training=True)  # fmt: skip
            loss = keras.ops.mean(keras.losses.binary_crossentropy(y, y_pred))
            return loss, non_trainable

        gradients = jax.value_and_grad(loss_fn, has_aux=True)

        def train(trainable, non_trainable, optimizer, x, y):
            (loss, non_trainable), grads = gradients(trainable, non_trainable, x, y)
            trainable, optimizer = model.optimizer.stateless_apply(optimizer, grads, trainable)
            return loss, trainable, non_trainable, optimizer

        self.function = jax.jit(train, donate_argnums=(0, 1, 2))

    def _variables(self) -> list[list]:
        model = self.model
        owners = [model.trainable_variables, model.non_trainable_variables]
        return owners + ([model.optimizer.variables] if self.mode == "train" else [])

    def __call__(self) -> None:
        import jax

        if self.state is None:
            self.state = tuple([v.value for v in vs] for vs in self._variables())
        if self.mode == "infer":
            jax.block_until_ready(self.function(*self.state, self.batch.images))
            return
        loss, *state = self.function(*self.state, self.batch.images, self.batch.labels)
        self.state = tuple(state)
        jax.block_until_ready((loss, self.state))

    def finish(self) -> None:
        if self.state is None or self.mode == "infer":
            self.state = None
            return
        for variables, values in zip(self._variables(), self.state, strict=True):
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)
        self.state = None


def timed(step: Callable[[], None], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    return samples


def compare(runner: StepRunner, rounds: int, steps: int, keras_loop: bool) -> dict:
    """The contenders of one configuration interleaved in rounds, the order rotating: their
    medians, spreads and ratios."""
    mode, batch = runner.config.mode, runner.batch
    contenders = {"compiled": runner.steps["compiled"], "api": runner.steps["api"]}
    if keras_loop:
        contenders["keras_loop"] = KerasLoop(runner.model, mode, batch)
    if keras.backend.backend() == "jax":
        contenders["jax_stateless"] = JaxStatelessStep(runner.model, mode, batch)
    runner.steps["compiled"].compile()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_index in range(rounds + 1):  # round 0 compiles and warms up, untimed
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            step = contenders[name]
            times = timed(step, steps if round_index else 2)
            step.finish()
            if round_index:
                samples[name] += times
    medians = {name: statistics.median(times) for name, times in samples.items()}
    report = {
        "key": runner.config.key,
        "steps_each": steps * rounds,
        "median_ms": {name: m * 1e3 for name, m in medians.items()},
        "sd_ms": {name: statistics.stdev(t) * 1e3 for name, t in samples.items()},
    }
    for reference in ("keras_loop", "jax_stateless"):
        if reference in medians:
            report[f"ratio_to_{reference}"] = {name: m / medians[reference]
                                               for name, m in medians.items()}  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default="mobilenetv2")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--mode", nargs="+", default=["train"], choices=("train", "infer"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--no-keras-loop", action="store_true",
                        help="leave out the train_on_batch / predict_on_batch loop")  # fmt: skip
    parser.add_argument("--json", help="also write the medians and ratios here")
    args = parser.parse_args()
    start_quietly()

    # both step kinds: the runner holds only the ones its configuration asks for
    first = TimingConfig(backbones.get(args.backbone).name, args.size, args.batch, args.mode[0],
                         step="both")  # fmt: skip
    model = build_for_timing(first)
    report: dict = {"backend": keras.backend.backend(), "engine_loop_ns":
                    statistics.median(timed(lambda: None, 100_000)) * 1e9, "modes": {}}  # fmt: skip
    for mode in args.mode:
        runner = StepRunner(model, replace(first, mode=mode))
        report["modes"][mode] = compare(runner, args.rounds, args.steps, not args.no_keras_loop)
        runner.finish()
        print(json.dumps(report["modes"][mode], indent=1), flush=True)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(report, handle, indent=1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # a time limit: the modes already written stay
        sys.exit("engine_overhead: interrupted; the modes finished so far are in --json")
