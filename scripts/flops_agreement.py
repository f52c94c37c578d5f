"""Does castbench count the same FLOPs under TensorFlow and JAX? For every backbone at its
native size, the forward GFLOPs per image under each backend (each in a process of its own:
Keras picks its backend at import), side by side, into a CSV.

    python scripts/flops_agreement.py [--backbones all] [--out results/flops-agreement.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from castbench import backbones
from castbench.files import atomic_write_text, csv_text

COUNT = """
import json, sys
from castbench.flops import forward_flops_per_image
from castbench.models import build_model
from castbench.runtime import start_quietly
from castbench.spec import ModelSpec
start_quietly()
name, size = sys.argv[1], int(sys.argv[2])
print(json.dumps(forward_flops_per_image(build_model(ModelSpec(name, size))) / 1e9))
"""


def count(backend: str, name: str, size: int) -> float:
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-c", COUNT, name, str(size)], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbones", nargs="+", default=["all"])
    parser.add_argument("--out", type=Path, default=Path("results/flops-agreement.csv"))
    args = parser.parse_args()
    rows = []
    for record in backbones.resolve(args.backbones):
        size = record.native_size
        tf, jax = count("tensorflow", record.name, size), count("jax", record.name, size)
        rows.append({"backbone": record.name, "input_size": size, "tensorflow_gflops": tf,
                     "jax_gflops": jax, "jax_over_tensorflow": jax / tf})  # fmt: skip
        print(f"{record.name:<18} {size:4d}px  TF {tf:8.3f}  JAX {jax:8.3f}  ratio {jax / tf:.4f}",
              flush=True)  # fmt: skip
    columns = ("backbone", "input_size", "tensorflow_gflops", "jax_gflops", "jax_over_tensorflow")
    atomic_write_text(args.out, csv_text(rows, columns))


if __name__ == "__main__":
    main()
