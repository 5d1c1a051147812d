"""The Python call's overhead on a sampling run: `ebm sample` as a process against
ebm_gpu.sample() in a running interpreter, same settings, median of REPEATS each.

    python python/bench_overhead.py [--backend cpu] [--chains 4096] [--steps 1000]
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import ebm_gpu

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--chains", type=int, default=4096)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--ebm", default=os.environ.get("EBM_BIN", str(REPO / "target/release/ebm")))
    a = p.parse_args()
    settings = ["--energy", "ring8", "--chains", str(a.chains), "--steps", str(a.steps), "--step-size", "0.02", "--backend", a.backend]
    cli, py = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "s.npy")
        for _ in range(a.repeats):
            t = time.perf_counter()
            subprocess.run([a.ebm, "sample", *settings, "--out", out], check=True, capture_output=True)
            cli.append(time.perf_counter() - t)
            t = time.perf_counter()
            ebm_gpu.sample("ring8", chains=a.chains, steps=a.steps, step_size=0.02, backend=a.backend)
            py.append(time.perf_counter() - t)
    c, q = statistics.median(cli), statistics.median(py)
    print(f"ebm sample (process): {c:.3f} s; ebm_gpu.sample(): {q:.3f} s; overhead {100 * (q - c) / c:+.1f} % "
          f"(median of {a.repeats}, {a.chains} chains x {a.steps} steps, --backend {a.backend})")


if __name__ == "__main__":
    main()
