#!/usr/bin/env bash
# Runs every command of README's tour at full size, as written, with the release build, and
# writes docs/timings.md (the wall time of each, the machine) and README's figures under docs/.
# Sections can be picked by parts of their headings:
#   EBM_README_SECTIONS="Sampling,Training" scripts/readme_timings.sh
# The scratch directory is EBM_README_DIR (default: a folder in the temp dir, kept). MNIST is
# read where `--data mnist` finds it ($EBM_DATA_DIR, else the per-user data dir), fetched by
# README's own `ebm data download` lines when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --bin ebm
EBM_README_BIN="$(cd "$target/release" && pwd)/ebm" \
  cargo test --test readme -- --ignored --exact readme_timings --nocapture
