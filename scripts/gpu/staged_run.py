"""The staged GPU run: one call, one time budget, highest value first, and every stage packed
into OUT as soon as it ends, so a call cut short still brings back what it finished.

1. ``1-smoke``: versions, the devices JAX sees, nvidia-smi, into ``environment.json`` (<= 30 s).
2. ``2-scratch-jax``: the accuracy half under JAX: the full synthetic set written (in parallel,
   one process per core), then ``castbench train`` MobileNetV2 from random weights on the
   scratch recipe (128 px, 12 epochs), ``--resume`` so a run cut short goes on from its last
   finished epoch on the same machine.
3. ``3-engine-overhead``: EfficientNetB4 380 px bs 8, train and infer: castbench's compiled
   and API steps against a hand-written jitted stateless step, interleaved in rounds.
4. ``4-efficientnetb4``: ``castbench timing``, EfficientNetB4 bs 2/4/8, train and infer (both
   step kinds), float32, then mixed_bfloat16 at bs 8, 50 timed steps; then ``castbench peer
   timm`` on the same float32 configurations where PyTorch and timm are installed (a line in
   the stage's log where they are not).
5. ``5-matrix``: as much of the default matrix as is left time for, cheapest first: every
   backbone's inference, then every backbone's training, in castbench's cost order.

Timing stages resume (``--resume``) and do not pre-compile (``--compile-jobs 0``: the timed
phase would wait for the whole matrix's compiles). Every JAX compile goes to one persistent
cache, packed into OUT as ``xla-cache.tar.gz`` when it fits, for the next call to carry in.
Weights and training checkpoints stay behind: MobileNetV2's at 128 px (27 MB of weights, 18 MB
of Adam's moments) are over what one file may bring back, and the metrics are what the stage
is for.

    python scripts/gpu/staged_run.py --out OUT [--budget 520] [--carried-in PATH] [--work DIR]

Run it through ``scripts/gpu/staged_run.sh``, which unpacks carried wheels first.
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import time
from importlib.util import find_spec
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from staging import (  # noqa: E402  (beside this file, not a package)
    MAX_FILE_BYTES,
    MAX_OUT_BYTES,
    MAX_OUT_FILES,
    Budget,
    Stage,
    Summary,
    archive,
    run_stage,
    run_stages,
)

ROOT = Path(__file__).resolve().parents[2]
BACKBONE, SIZE, BATCHES = "efficientnetb4", "380", ("2", "4", "8")
DEFAULT_BUDGET_S = 520.0
# kept after the last stage for packing the compile cache and the summary
RESERVE_S = 15.0
CACHE = "xla-cache"  # the cache's folder in the work folder, and its archive's name
LOG = "staged_run.log"  # written by staged_run.sh
SUMMARY = "stages.json"
SYNTHETIC = "synthetic-full"  # the full synthetic set, in the work folder
PEER_SHARE = 0.3  # of the EfficientNetB4 stage, for timm after castbench's own rows


def castbench_timing(out: Path, cache: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "castbench", "timing", *options, "--resume",
            "--compile-jobs", "0", "--compile-cache", str(cache), "--no-plots",
            "--out", str(out)]  # fmt: skip


def cheapest_first() -> list[str]:
    """The default matrix's backbones by castbench's own cost estimate (the one shards are
    balanced by), cheapest first."""
    from castbench.timing.config import MODES, build_matrix
    from castbench.timing.shard import config_cost

    costs: dict[str, float] = {}
    for config in build_matrix(None, [int(b) for b in BATCHES], list(MODES)):
        costs[config.backbone] = costs.get(config.backbone, 0.0) + config_cost(config)
    return sorted(costs, key=costs.__getitem__)


def peer_missing() -> str | None:
    missing = [name for name in ("torch", "timm") if find_spec(name) is None]
    return f"{' and '.join(missing)} not installed here" if missing else None


def plan(cache: Path) -> list[Stage]:
    """The five stages, highest value first (see the module's docstring)."""
    python = sys.executable
    scripts = ROOT / "scripts"
    efficientnet = ("--backbones", BACKBONE, "--steps", "50")

    def smoke(folder: Path, _: float) -> list[list[str]]:
        return [[python, str(scripts / "gpu" / "smoke.py"), str(folder / "environment.json")]]

    def scratch(folder: Path, _: float) -> list[list[str]]:
        data = folder.parent / SYNTHETIC  # outside the stage's folder: never packed
        commands = []
        if not (data / "castbench-synthetic.json").is_file():
            commands.append([python, "-m", "castbench", "data", "synth", "--scale", "full",
                             str(data)])  # fmt: skip
        commands.append([python, "-m", "castbench", "train", "--backbone", "mobilenetv2",
                         "--data", str(data), "--resume",
                         "--out", str(folder / "mobilenetv2-scratch")])  # fmt: skip
        return commands

    def engine(folder: Path, _: float) -> list[list[str]]:
        report = str(folder / "engine-overhead.json")
        return [[python, str(scripts / "engine_overhead.py"), "--backbone", BACKBONE, "--size",
                 SIZE, "--batch", "8", "--mode", "train", "infer", "--rounds", "3", "--steps",
                 "20", "--no-keras-loop", "--json", report]]  # fmt: skip

    def efficientnet_b4(folder: Path, seconds: float) -> list[list[str]]:
        out = folder / BACKBONE
        commands = [castbench_timing(out, cache, *efficientnet, "--batch", *BATCHES),
                    castbench_timing(out, cache, *efficientnet, "--batch", "8",
                                     "--precision", "mixed_bfloat16")]  # fmt: skip
        missing = peer_missing()
        if missing:  # the reason goes into the stage's log
            commands.append([python, "-c", f"print('peer timm not run: {missing}')"])
        else:
            commands.append([python, "-m", "castbench", "peer", "timm", *efficientnet, "--batch",
                             *BATCHES, "--resume", "--budget", f"{PEER_SHARE * seconds:.0f}",
                             "--no-plots", "--out", str(folder / "timm")])  # fmt: skip
        return commands

    def matrix(folder: Path, _: float) -> list[list[str]]:
        order = ("--backbones", *cheapest_first(), "--batch", *BATCHES)
        return [castbench_timing(folder / "matrix", cache, *order, "--mode", mode)
                for mode in ("infer", "train")]  # fmt: skip

    return [
        Stage("1-smoke", 10, smoke, cap_s=30, repeat=True),
        Stage("2-scratch-jax", 150, scratch, share=0.45),
        Stage("3-engine-overhead", 60, engine, share=0.25),
        Stage("4-efficientnetb4", 60, efficientnet_b4, share=0.40),
        Stage("5-matrix", 30, matrix),
    ]


def carry_in(path: Path | None, work: Path) -> Path:
    """The compile cache folder to use. ``path`` is what an earlier call brought back: its
    OUT folder (every archive in it is unpacked into ``work``: the cache, finished stages, a
    matrix to resume), one ``.tar.gz`` of it, or a cache folder, used in place."""
    if path is None:
        return work / CACHE
    if not path.exists():
        raise SystemExit(f"staged_run: error: nothing at {path} to carry in")
    archives = sorted(path.glob("*.tar.gz")) if path.is_dir() else [path]
    if path.is_dir() and not archives:
        return path
    for packed in archives:
        with tarfile.open(packed) as tar:
            tar.extractall(work, filter="data")
    return work / CACHE


def pack_cache(cache: Path, out: Path) -> dict:
    """The cache archived into OUT when it fits what comes back; its size either way."""
    files = [p for p in cache.rglob("*") if p.is_file()] if cache.is_dir() else []
    note: dict = {"folder": str(cache), "entries": len(files),
                  "bytes": sum(p.stat().st_size for p in files), "archive_bytes": None,
                  "brought_back": False}  # fmt: skip
    if not files:
        return note
    target = archive(cache, out, CACHE)
    note["archive_bytes"] = target.stat().st_size
    together = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    if note["archive_bytes"] > MAX_FILE_BYTES or together > MAX_OUT_BYTES - 2**20:
        target.unlink()
        note["why_not"] = (f"{note['archive_bytes'] / 2**20:.1f} MiB packed: over the "
                           f"{MAX_FILE_BYTES // 2**20} MiB a file may have or the "
                           f"{MAX_OUT_BYTES // 2**20} MiB OUT may hold")  # fmt: skip
    else:
        note["brought_back"] = True
    return note


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="what comes back (<= 8 files)")
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET_S,
        help=f"seconds for the whole call (default {DEFAULT_BUDGET_S:.0f})",
    )
    parser.add_argument(
        "--carried-in",
        type=Path,
        default=None,
        metavar="PATH",
        help="an earlier call's OUT, its xla-cache.tar.gz, or a cache folder",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "staged",
        help="where stages write before they are packed (default: staged/)",
    )
    args = parser.parse_args(argv)
    if not args.budget > 0:
        parser.error(f"--budget must be a positive number of seconds, got {args.budget:g}")
    leftovers = [p.name for p in args.out.iterdir() if p.name != LOG] if args.out.is_dir() else []
    if leftovers:
        parser.error(f"{args.out} must be empty (it holds {', '.join(sorted(leftovers))})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = float(os.environ.get("STAGED_RUN_STARTED") or time.time())
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    cache = carry_in(args.carried_in, args.work)
    stages = plan(cache)
    assert len(stages) + 3 <= MAX_OUT_FILES  # the stages, the log, the summary, the cache

    def say(line: str) -> None:
        print(f"staged_run [{time.time() - started:5.0f} s]: {line}", flush=True)

    env = {**os.environ, "CASTBENCH_COMPILE_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    env.setdefault("KERAS_BACKEND", "jax")
    say(f"{args.budget:.0f} s budget; stages write to {args.work}, archives go to {args.out}; "
        f"compile cache {cache}")  # fmt: skip
    summary = Summary(args.budget)
    run_stages(stages, Budget(args.budget, started, RESERVE_S), args.work, args.out, summary,
               lambda stage, folder, limit: run_stage(stage, folder, limit, env), say)  # fmt: skip
    summary.notes["compile_cache"] = note = pack_cache(cache, args.out)
    where = "in OUT" if note["brought_back"] else f"not in OUT: {note.get('why_not', 'empty')}"
    say(f"compile cache: {note['entries']} files, {note['bytes'] / 2**20:.1f} MiB ({where})")
    summary.notes["wall_s"] = round(time.time() - started, 1)
    summary.write(args.out / SUMMARY)
    files = sorted(p.name for p in args.out.iterdir())
    say(f"done in {summary.notes['wall_s']:.0f} s: {summary.line()}")
    say(f"{len(files)} files in {args.out}: {', '.join(files)}")
    return 1 if summary.names("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
