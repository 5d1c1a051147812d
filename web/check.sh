#!/usr/bin/env bash
# Builds the browser demo, serves it on localhost and runs check.mjs in Debian's headless
# Chromium with WebGPU on (README.md). Needs: the wasm32 target, wasm-bindgen-cli of the exact
# version in Cargo.lock, node + npm, chromium-headless-shell (apt). Writes ../docs/web_demo.png.
set -euo pipefail
cd "$(dirname "$0")"
want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "wasm-bindgen-cli $want is needed (found: ${have:-none}): cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
command -v "${CHROMIUM:-chromium-headless-shell}" >/dev/null || {
  echo "no ${CHROMIUM:-chromium-headless-shell}: apt-get install chromium-headless-shell (or set CHROMIUM)" >&2
  exit 1
}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir pkg "$target/wasm32-unknown-unknown/release/ebm_gpu_web.wasm"
[ -d node_modules/puppeteer-core ] || npm install --no-audit --no-fund
port=${PORT:-8765}
python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
node check.mjs "http://127.0.0.1:$port/index.html" ../docs/web_demo.png ../docs/jem_mnist_samples.png
