#!/usr/bin/env bash
# Runs every command of README's tour at full size, as written, and writes docs/timings.md
# (wall time of each, the machine) and README's figures under docs/. Sections to run can be
# picked: EBM_README_SECTIONS="Sampling,Training" scripts/readme_timings.sh. The scratch
# directory is EBM_README_DIR (default: a folder in the temp dir); MNIST comes from where
# `--data mnist` finds it ($EBM_DATA_DIR, the per-user data dir), downloaded by README's own
# `ebm data download` lines if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test readme -- --ignored --exact readme_timings --nocapture
