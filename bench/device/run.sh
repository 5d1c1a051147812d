#!/usr/bin/env bash
# The device kit: everything a short, unannounced visit to a real GPU needs, prepared here.
#
#   bash bench/device/run.sh prepare [--kit DIR]
#       On the build machine: builds the release `ebm` and the particles example, and gathers the
#       binaries, the Vulkan loader packages (.deb), the peer scripts, MNIST and the BlackJAX
#       wheel into one git-ignored folder (default .device-kit/, < 64 MiB).
#
#   bash bench/device/run.sh run [--dry-run] [--quick] [--smallest] [--ebm PATH] [--out DIR]
#                               [--kit DIR] [--python PATH] [--budget S] [--peak-tflops F --peak-gbs F]
#       On the GPU machine (or, with --dry-run, here on lavapipe and the CPU peers at small
#       sizes): installs the loader if none is there, points Vulkan at the NVIDIA ICD, runs
#       `ebm info`, `ebm selftest`, every workload on ebm's GPU executor, then PyTorch (eager and
#       torch.compile), JAX and BlackJAX (and scikit-learn for the RBM) on the same workloads, and
#       writes DIR/device.md (one table), DIR/device.json (everything) and DIR/raw.tar.gz (logs).
#
# Every step has its own timeout and the whole run a time budget (default 450 s, --quick 170 s,
# --dry-run 280 s, --smallest 100 s): a step that would start past it is skipped and recorded.
# A failing step is recorded with its exit code and the run goes on; a peer library that is not
# importable gives its column "not installed". The exit status is non-zero only when the
# selftest failed or no workload was measured. bench/device/README.md has the details.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH=$(cd "$HERE/.." && pwd)          # bench/ (in the repo or in the kit)
ROOT=$(cd "$BENCH/.." && pwd)          # the repo root (or the kit's folder)

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

MODE_CMD=${1:-}
[ $# -gt 0 ] && shift
CMDLINE="bash $0 $MODE_CMD${*:+ $*}"
case "$MODE_CMD" in
  prepare|run) ;;
  -h|--help|help) usage; exit 0 ;;
  *) usage >&2; echo "error: the first argument is prepare or run" >&2; exit 2 ;;
esac

KIT=""; OUT_DIR=""; EBM=""; PARTICLES=""; PY=${PYTHON:-python3}
DRY=0; QUICK=0; SMALLEST=0; BUDGET=""; PEAK_TFLOPS=""; PEAK_GBS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --kit) KIT=$2; shift 2 ;;
    --out) OUT_DIR=$2; shift 2 ;;
    --ebm) EBM=$2; shift 2 ;;
    --particles) PARTICLES=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --quick) QUICK=1; shift ;;
    --smallest) SMALLEST=1; DRY=1; shift ;;
    --budget) BUDGET=$2; shift 2 ;;
    --peak-tflops) PEAK_TFLOPS=$2; shift 2 ;;
    --peak-gbs) PEAK_GBS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# The kit: next to this script when run from inside one, else .device-kit/ at the repo root.
if [ -z "$KIT" ]; then
  if [ -f "$ROOT/MANIFEST.txt" ] && [ -d "$ROOT/bin" ]; then KIT=$ROOT; else KIT=$ROOT/.device-kit; fi
fi
case "$KIT" in /*) ;; *) KIT=$PWD/$KIT ;; esac

UVA='1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/1/head:-f'
UVA_JEM='1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/10/head:lse'
SEED=20261122
BLACKJAX_VERSION=1.7.1
THRML_VERSION=0.1.4

# ---------------------------------------------------------------------------------------------
# prepare: build and gather
# ---------------------------------------------------------------------------------------------
if [ "$MODE_CMD" = prepare ]; then
  set -e
  cd "$ROOT"
  [ -f Cargo.toml ] || { echo "error: prepare runs in the repository (no Cargo.toml at $ROOT)" >&2; exit 2; }
  [ "$(uname -m)" = x86_64 ] || echo "warning: this machine is $(uname -m); the GPU machine is x86_64 and needs an x86_64 build" >&2
  echo "== cargo build --release (ebm) and --example particles"
  cargo build --release
  cargo build --release --example particles
  rm -rf "$KIT"; mkdir -p "$KIT/bin" "$KIT/debs" "$KIT/wheels" "$KIT/data/mnist" "$KIT/bench/device"
  cp target/release/ebm target/release/examples/particles "$KIT/bin/"
  strip "$KIT/bin/ebm" "$KIT/bin/particles" 2>/dev/null || true
  cp bench/*.py "$KIT/bench/"
  cp bench/device/run.sh bench/device/report.py bench/device/README.md "$KIT/bench/device/"

  echo "== the Vulkan loader and the GL dispatch libraries the NVIDIA ICD loads (amd64 .debs)"
  # A lists folder of its own, so this machine's apt state is left alone (device README's recipe).
  LISTS=/tmp/ebm-device-amd64-lists
  mkdir -p "$LISTS/partial"
  APT_O=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$LISTS)
  apt-get "${APT_O[@]}" update -qq
  (cd "$KIT/debs" && apt-get "${APT_O[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)

  echo "== MNIST (the training, RBM and AIS workloads)"
  MNIST=""
  for d in "${EBM_DATA_DIR:-}/mnist" "$ROOT/../shared/data/mnist" "$ROOT/shared/data/mnist"; do
    [ -f "$d/train-images-idx3-ubyte.gz" ] && { MNIST=$d; break; }
  done
  if [ -n "$MNIST" ]; then
    cp "$MNIST"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "$KIT/data/mnist/"
  else
    echo "warning: no MNIST found (EBM_DATA_DIR/mnist or ../shared/data/mnist): the data workloads will be skipped" >&2
  fi

  echo "== the BlackJAX wheel (the GPU image has jax, optax and scipy but not blackjax)"
  set +e
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$KIT/wheels" "blackjax==$BLACKJAX_VERSION" \
    || echo "warning: could not download blackjax: its column will read 'not installed' on the device" >&2
  echo "== the THRML wheel and what it needs beyond jax (equinox, jaxtyping, wadler_lindig)"
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$KIT/wheels" "thrml==$THRML_VERSION" equinox jaxtyping wadler_lindig \
    || echo "warning: could not download thrml and its dependencies: its column will read 'not installed' on the device" >&2
  set -e

  {
    echo "ebm device kit"
    echo "commit: $(git rev-parse HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | grep -q . && echo '(with local changes)')"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm)"
    echo "ebm: $("$KIT/bin/ebm" --version 2>/dev/null)"
    (cd "$KIT" && find . -type f ! -name MANIFEST.txt | sort | xargs du -b | sed 's/^/  /')
  } > "$KIT/MANIFEST.txt"
  grep -qx '/.device-kit/' .gitignore 2>/dev/null || echo "note: add /.device-kit/ to .gitignore so the kit travels only as a carried path" >&2
  BYTES=$(du -sb "$KIT" | cut -f1)
  TRACKED=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  echo "kit: $KIT, $(awk -v b="$BYTES" 'BEGIN{printf "%.1f MiB", b/1048576}') ($BYTES bytes); the tracked tree adds $(awk -v b="$TRACKED" 'BEGIN{printf "%.1f MiB", b/1048576}')"
  if [ "$BYTES" -ge $((64 * 1048576)) ] || [ $((BYTES + TRACKED)) -ge $((64 * 1048576)) ]; then
    echo "error: the kit and the tracked tree must stay under 64 MiB together (the device tool's limit)" >&2
    exit 1
  fi
  echo "ok: carry [\".device-kit\"] and run: bash bench/device/run.sh run  (README: the one command line)"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# run: measure
# ---------------------------------------------------------------------------------------------
T_START=$(date +%s)
if [ "$SMALLEST" = 1 ]; then MODE=smallest; elif [ "$DRY" = 1 ]; then MODE=dry-run; elif [ "$QUICK" = 1 ]; then MODE=quick; else MODE=full; fi
[ "$DRY" = 1 ] && [ "$QUICK" = 1 ] && [ "$SMALLEST" = 0 ] && MODE=dry-run
if [ -z "$BUDGET" ]; then
  case $MODE in full) BUDGET=450 ;; quick) BUDGET=170 ;; dry-run) BUDGET=280 ;; smallest) BUDGET=100 ;; esac
fi
DEADLINE=$((T_START + BUDGET))

[ -n "$OUT_DIR" ] || OUT_DIR=${OUT:-$PWD/device-out}
mkdir -p "$OUT_DIR"; OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ebm-device.XXXXXX")
RAW=$WORK/raw; mkdir -p "$RAW"
STEPS_TSV=$WORK/steps.tsv; : > "$STEPS_TSV"
NOTES=$WORK/notes.txt; : > "$NOTES"
note() { echo "note: $*"; echo "$*" >> "$NOTES"; }

# The binaries: --ebm, else the kit's, else this repo's release build.
if [ -z "$EBM" ]; then
  for c in "$KIT/bin/ebm" "$ROOT/target/release/ebm"; do [ -x "$c" ] && { EBM=$c; break; }; done
fi
if [ -z "$PARTICLES" ]; then
  for c in "$(dirname "${EBM:-/nonexistent}")/examples/particles" "$KIT/bin/particles" "$ROOT/target/release/examples/particles"; do
    [ -x "$c" ] && { PARTICLES=$c; break; }
  done
fi
[ -n "$EBM" ] && [ -x "$EBM" ] || { echo "error: no ebm binary (--ebm PATH, $KIT/bin/ebm or target/release/ebm)" >&2; exit 2; }
EBM=$(cd "$(dirname "$EBM")" && pwd)/$(basename "$EBM")
[ -n "$PARTICLES" ] && PARTICLES=$(cd "$(dirname "$PARTICLES")" && pwd)/$(basename "$PARTICLES")

echo "== ebm device run ($MODE, budget ${BUDGET} s): out $OUT_DIR, work $WORK"
echo "   ebm: $EBM; particles: ${PARTICLES:-none}; python: $PY; kit: $KIT"

# --- the Vulkan loader and the NVIDIA ICD ---------------------------------------------------------
LOADER=system
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  if [ "$DRY" = 0 ] && ls "$KIT"/debs/*.deb >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    for f in "$KIT"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
    LOADER="the kit's .debs (dpkg -x to /)"
  else
    LOADER=missing
    note "no Vulkan loader (libvulkan.so.1) here$( [ "$DRY" = 1 ] && echo ' and a dry run unpacks none' ): ebm will find no Vulkan adapter"
  fi
fi
ICD=""
if [ "$DRY" = 0 ]; then
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$f" ] && { ICD=$f; break; }
  done
  if [ -n "$ICD" ]; then
    export VK_DRIVER_FILES=$ICD VK_ICD_FILENAMES=$ICD
    egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    [ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
  else
    note "no NVIDIA Vulkan ICD file found (looked in /usr/local/nvidia/share/vulkan/icd.d, /etc/vulkan/icd.d, /usr/share/vulkan/icd.d)"
  fi
fi

# --- data -------------------------------------------------------------------------------------------
DATA_ROOT=""
for d in "$KIT/data" "${EBM_DATA_DIR:-/nonexistent}" "$ROOT/../shared/data" "$ROOT/shared/data"; do
  [ -f "$d/mnist/train-images-idx3-ubyte.gz" ] && { DATA_ROOT=$(cd "$d" && pwd); break; }
done
if [ -n "$DATA_ROOT" ]; then export EBM_DATA_DIR=$DATA_ROOT; MNIST=$DATA_ROOT/mnist; else MNIST=""; note "no MNIST (kit data/, EBM_DATA_DIR, ../shared/data): the training, RBM and AIS workloads are skipped"; fi

# --- peers: what is importable ------------------------------------------------------------------------
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if ! command -v "$PY" >/dev/null 2>&1; then note "no $PY: every peer column reads 'not installed'"; fi
# The kit's wheels (blackjax; thrml and what it needs), each only where its module does not import.
if [ "$DRY" = 0 ] && ls "$KIT"/wheels/*.whl >/dev/null 2>&1 && command -v "$PY" >/dev/null 2>&1 \
   && "$PY" -c 'import jax' >/dev/null 2>&1; then
  WHEELS=()
  for w in "$KIT"/wheels/*.whl; do
    mod=$(basename "$w" | cut -d- -f1)
    "$PY" -c "import $mod" >/dev/null 2>&1 || WHEELS+=("$w")
  done
  if [ ${#WHEELS[@]} -gt 0 ]; then
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" "${WHEELS[@]}" >"$RAW/pip-wheels.log" 2>&1; then
      export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
    else
      note "installing the kit's wheels failed (raw/pip-wheels.log)"
    fi
  fi
fi
PEER_DEVICE=$([ "$DRY" = 1 ] && echo cpu || echo cuda)
"$PY" - "$PEER_DEVICE" > "$RAW/peers.json" 2>"$RAW/peers.log" <<'EOF' || echo '{}' > "$RAW/peers.json"
import importlib, json, sys
device = sys.argv[1]
out = {}
for name in ("torch", "jax", "blackjax", "sklearn", "thrml", "numpy"):
    try:
        m = importlib.import_module(name)
    except Exception as e:  # ImportError, or a broken install
        out[name] = {"status": "not installed", "detail": f"{type(e).__name__}: {e}"[:300]}
        continue
    info = {"status": "installed", "version": getattr(m, "__version__", "?")}
    try:
        if name == "torch":
            info["cuda"] = bool(m.cuda.is_available())
            if info["cuda"]:
                info["device"] = m.cuda.get_device_name(0)
        if name == "jax" and device == "cuda":
            info["devices"] = [str(d) for d in m.devices()]
    except Exception as e:
        info["detail"] = f"{type(e).__name__}: {e}"[:300]
    out[name] = info
print(json.dumps(out))
EOF
have() { "$PY" -c "import json,sys; d=json.load(open('$RAW/peers.json')); sys.exit(0 if d.get('$1',{}).get('status')=='installed' else 1)" 2>/dev/null; }
for p in torch jax blackjax sklearn thrml; do
  if have $p; then echo "   peer $p: installed"; else echo "   peer $p: not installed"; fi
done

# --- the step runner --------------------------------------------------------------------------------
# step NAME TIMEOUT CMD...: runs CMD with its output in raw/NAME.log, under min(TIMEOUT, the
# budget left); records name, exit code, seconds, limit, status and the command in steps.tsv.
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >> "$STEPS_TSV"; }
step() {
  local name=$1 limit=$2; shift 2
  local cmd; cmd=$(printf '%q ' "$@")
  local left=$((DEADLINE - $(date +%s)))
  if [ "$left" -lt 5 ]; then
    record "$name" "" 0 0 "skipped: out of time" "$cmd"
    printf '[%4ds] %-40s skipped (out of time)\n' $(( $(date +%s) - T_START )) "$name"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0 t1 rc status
  t0=$(date +%s.%N)
  (cd "$WORK" && exec timeout -k 5 "$limit" "$@") > "$RAW/$name.log" 2>&1 < /dev/null
  rc=$?
  t1=$(date +%s.%N)
  case $rc in 0) status=ok ;; 124|137) status=timeout ;; *) status=failed ;; esac
  local secs; secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  record "$name" "$rc" "$secs" "$limit" "$status" "$cmd"
  printf '[%4ds] %-40s %-8s %7.1f s%s\n' $(( $(date +%s) - T_START )) "$name" "$status" "$secs" \
    "$([ "$status" = ok ] || echo "  (rc $rc; last line: $(tail -n 1 "$RAW/$name.log" | tr -d '\r' | cut -c1-100))")"
  return 0
}
# skip NAME REASON: a step that was not run (a missing peer, a missing prerequisite).
skip() { record "$1" "" 0 0 "$2" ""; printf '[%4ds] %-40s %s\n' $(( $(date +%s) - T_START )) "$1" "$2"; }

# --- sizes ------------------------------------------------------------------------------------------
# TORCHEBM: DIM:CHAINS:STEPS sizes of ULA and HMC (bench --suite torchebm); MALA_D128: the MALA case.
# RING8_BIG / MLP_BIG: CHAINS:STEPS through `ebm sample` (two runs, 50 steps apart ... see below).
# *_BENCH: flags of `ebm bench` for the suites; CONV_*: the ConvEBM; TRAIN_*: ebm train / torch.
case $MODE in
  full)
    TORCHEBM="8:64:50 32:256:100 128:1024:200"; TORCHEBM_BENCH=""; MALA_D=128; MALA_C=1024; MALA_S=200
    LANGEVIN_BENCH="--steps 1000"; RING8_BENCH="1024:1000 16384:1000 65536:1000"; RING8_BIG="262144:200 1048576:200"
    MLP_BENCH="--steps 200"; MLP_BENCH_CASES="mlp2x128x128x1:1024:200 mlp2x128x128x1:16384:200 mlp2x128x128x1:65536:200 mlp32x256x256x1:1024:200 mlp32x256x256x1:16384:200 mlp784x512x512x1:1024:200 mlp784x512x512x1:4096:200"
    MLP_BIG="262144:50 1048576:50"
    CONV_BENCH="--quick --steps 50"; CONV_CASES="128:50 1024:50 8192:50"; CONV_SAMPLE=""
    TRAIN_STEPS=48; TRAIN_BATCH=128; TRAIN_K=""; TRAIN_SUBSET=10000; TORCH_TRAIN_STEPS=20
    RBM_LIMIT=60000; AIS_RUNS=100; AIS_BETAS=15000; AIS_LIMIT=1000
    PARTICLE_CHAINS="65536 1048576"; FRAMES=60; FRAME_STEPS=4; FRAME_SIZE=512
    COMPILE_SCRIPTS="langevin nn train"
    DISCRETE_BENCH=""; THRML_CASES="256:16:200 1024:4:50 g65536:16:200"; DBM_LAYERS=500,1000 ;;
  quick)
    TORCHEBM="8:64:50 32:256:100 128:1024:200"; TORCHEBM_BENCH=""; MALA_D=128; MALA_C=1024; MALA_S=200
    LANGEVIN_BENCH="--steps 500"; RING8_BENCH="1024:500 16384:500 65536:500"; RING8_BIG="1048576:200"
    MLP_BENCH="--steps 100"; MLP_BENCH_CASES="mlp2x128x128x1:1024:100 mlp2x128x128x1:16384:100 mlp2x128x128x1:65536:100"
    MLP_BIG="1048576:50"
    CONV_BENCH="--quick --steps 20"; CONV_CASES="128:20 1024:20 8192:20"; CONV_SAMPLE=""
    TRAIN_STEPS=32; TRAIN_BATCH=128; TRAIN_K=""; TRAIN_SUBSET=10000; TORCH_TRAIN_STEPS=10
    RBM_LIMIT=20000; AIS_RUNS=100; AIS_BETAS=5000; AIS_LIMIT=500
    PARTICLE_CHAINS="65536 1048576"; FRAMES=30; FRAME_STEPS=4; FRAME_SIZE=512
    COMPILE_SCRIPTS="langevin"
    DISCRETE_BENCH="--steps 50"; THRML_CASES="256:16:50 1024:4:50 g65536:16:50"; DBM_LAYERS=500,1000 ;;
  dry-run)
    TORCHEBM="8:64:50"; TORCHEBM_BENCH="--quick"; MALA_D=8; MALA_C=64; MALA_S=50
    LANGEVIN_BENCH="--quick"; RING8_BENCH="256:50 1024:49"; RING8_BIG="16384:200"
    MLP_BENCH="--quick"; MLP_BENCH_CASES="mlp2x128x128x1:256:20"; MLP_BIG="512:5"
    CONV_BENCH=""; CONV_CASES="4:2 16:2"; CONV_SAMPLE=1
    TRAIN_STEPS=17; TRAIN_BATCH=4; TRAIN_K=2; TRAIN_SUBSET=1024; TORCH_TRAIN_STEPS=2
    RBM_LIMIT=300; AIS_RUNS=8; AIS_BETAS=100; AIS_LIMIT=100
    PARTICLE_CHAINS="16384 65536"; FRAMES=5; FRAME_STEPS=4; FRAME_SIZE=128
    COMPILE_SCRIPTS="langevin nn train"
    DISCRETE_BENCH="--quick"; THRML_CASES="64:16:20"; DBM_LAYERS=500,1000 ;;
  smallest)
    TORCHEBM="8:64:5"; TORCHEBM_BENCH="--quick --steps 5"; MALA_D=8; MALA_C=64; MALA_S=5
    LANGEVIN_BENCH=""; RING8_BENCH=""; RING8_BIG="256:5"
    MLP_BENCH=""; MLP_BENCH_CASES=""; MLP_BIG="64:2"
    CONV_BENCH=""; CONV_CASES="2:1"; CONV_SAMPLE=1
    TRAIN_STEPS=1; TRAIN_BATCH=2; TRAIN_K=1; TRAIN_SUBSET=256; TORCH_TRAIN_STEPS=1
    RBM_LIMIT=100; AIS_RUNS=4; AIS_BETAS=100; AIS_LIMIT=100
    PARTICLE_CHAINS="1024"; FRAMES=2; FRAME_STEPS=2; FRAME_SIZE=64
    COMPILE_SCRIPTS=""
    DISCRETE_BENCH="--quick --steps 2"; THRML_CASES="64:16:2"; DBM_LAYERS=64,32 ;;
esac
# `ebm sample` times its whole run, pipeline creation and first dispatches included: each sample
# case runs twice, BASE steps and BASE + S steps, and the rate is chains x S / (t2 - t1). With
# BASE = 50 both runs wait for the GPU 50 times (`ebm sample` runs its steps in 50 chunks), so
# that cost cancels too. A software adapter gets a smaller BASE (a dry run checks the script).
case $MODE in full|quick) SAMPLE_BASE=50 ;; dry-run) SAMPLE_BASE=5 ;; smallest) SAMPLE_BASE=1 ;; esac

# --- ebm: info and selftest ---------------------------------------------------------------------------
step ebm.version 10 "$EBM" --version
step ebm.info 60 "$EBM" info
GPU_OK=1
if grep -q '^--backend gpu opens: none' "$RAW/ebm.info.log" 2>/dev/null || ! grep -q '^--backend gpu opens:' "$RAW/ebm.info.log" 2>/dev/null; then
  GPU_OK=0
  note "ebm info: no GPU adapter opens ($(grep '^--backend gpu opens' "$RAW/ebm.info.log" 2>/dev/null | cut -c1-200)): the ebm GPU steps are skipped"
fi
ADAPTER=$(sed -n 's/^--backend gpu opens: //p' "$RAW/ebm.info.log" 2>/dev/null | head -n 1)
if [ -z "$PEAK_TFLOPS" ] && [ "$DRY" = 0 ]; then
  case "$ADAPTER" in
    *H200*) PEAK_TFLOPS=67; PEAK_GBS=4800 ;;
    *H100*) PEAK_TFLOPS=67; PEAK_GBS=3350 ;;
  esac
fi
ROOF=()
if [ -n "$PEAK_TFLOPS" ] && "$EBM" bench --help 2>/dev/null | grep -q peak-tflops; then
  ROOF=(--peak-tflops "$PEAK_TFLOPS" --peak-gbs "${PEAK_GBS:-3350}")
fi

SELFTEST=skipped
if ! "$EBM" selftest --help >/dev/null 2>&1; then
  SELFTEST="not in this binary"
  skip ebm.selftest "not in this binary"
elif [ "$GPU_OK" = 0 ]; then
  SELFTEST="skipped: no GPU adapter"
  skip ebm.selftest "skipped: no GPU adapter"
else
  # Only the flags this binary's selftest has (a usage error would read as a failed selftest).
  ST_HELP=$("$EBM" selftest --help 2>&1)
  ST_ARGS=()
  grep -q -- '--backend' <<< "$ST_HELP" && ST_ARGS+=(--backend gpu)
  [ "$MODE" != full ] && grep -q -- '--quick' <<< "$ST_HELP" && ST_ARGS+=(--quick)
  # The smallest mode checks the script, not the kernels (tests/device_kit.rs on a software
  # adapter, whose first selftest spends a minute compiling pipelines): two checks do.
  [ "$MODE" = smallest ] && grep -q -- '--only' <<< "$ST_HELP" && ST_ARGS+=(--only rng,energy-analytic)
  grep -q -- '--json' <<< "$ST_HELP" && ST_ARGS+=(--json "$RAW/selftest.json")
  step ebm.selftest 150 "$EBM" selftest "${ST_ARGS[@]}"
  SELFTEST=$(tail -n 1 "$STEPS_TSV" | cut -f5)
fi

# --- ebm: every workload on the GPU executor -------------------------------------------------------------
gpu_step() { if [ "$GPU_OK" = 1 ]; then step "$@"; else skip "$1" "skipped: no GPU adapter"; fi; }
# sample_pair NAME TIMEOUT CHAINS STEPS ARGS...: the two runs of one `ebm sample` case.
sample_pair() {
  local name=$1 limit=$2 chains=$3 steps=$4; shift 4
  gpu_step "$name.base" "$limit" "$EBM" sample --backend gpu --chains "$chains" --steps "$SAMPLE_BASE" --seed 1 --no-check "$@"
  gpu_step "$name" "$limit" "$EBM" sample --backend gpu --chains "$chains" --steps $((SAMPLE_BASE + steps)) --seed 1 --no-check "$@"
}

gpu_step ebm.bench.torchebm 120 "$EBM" bench --suite torchebm --backend gpu $TORCHEBM_BENCH "${ROOF[@]}" --csv "$RAW/ebm.bench.torchebm.csv"
sample_pair "ebm.sample.double_well${MALA_D}.mala.$MALA_C.$MALA_S" 60 "$MALA_C" "$MALA_S" \
  --energy "{\"type\":\"double_well\",\"dim\":$MALA_D,\"barrier\":2.0}" --sampler mala --step-size 0.01
[ -n "$LANGEVIN_BENCH" ] && gpu_step ebm.bench.langevin 120 "$EBM" bench --suite langevin --backend gpu $LANGEVIN_BENCH "${ROOF[@]}" --csv "$RAW/ebm.bench.langevin.csv"
for cs in $RING8_BIG; do
  sample_pair "ebm.sample.ring8.mala.${cs%%:*}.${cs##*:}" 60 "${cs%%:*}" "${cs##*:}" --energy ring8 --sampler mala --step-size 0.01
done
[ -n "$MLP_BENCH" ] && gpu_step ebm.bench.mlp 120 "$EBM" bench --suite mlp --backend gpu $MLP_BENCH "${ROOF[@]}" --csv "$RAW/ebm.bench.mlp.csv"
step ebm.init-mlp 20 "$EBM" init-mlp --dims 2,128,128,1 --act silu --seed $SEED --out "$WORK/mlp2.safetensors"
for cs in $MLP_BIG; do
  sample_pair "ebm.sample.mlp2x128x128x1.mala.${cs%%:*}.${cs##*:}" 90 "${cs%%:*}" "${cs##*:}" --energy "mlp:$WORK/mlp2.safetensors" --sampler mala --step-size 0.001
done
if [ -n "$CONV_SAMPLE" ]; then
  step ebm.init-net 20 "$EBM" init-net "$UVA" --seed $SEED --out "$WORK/uva.safetensors"
  for cs in $CONV_CASES; do
    sample_pair "ebm.sample.uva-convebm.ula.${cs%%:*}.${cs##*:}" 90 "${cs%%:*}" "${cs##*:}" --energy "net:$WORK/uva.safetensors" --sampler ula --step-size 0.001
  done
else
  gpu_step ebm.bench.nn 150 "$EBM" bench --suite nn --backend gpu $CONV_BENCH "${ROOF[@]}" --csv "$RAW/ebm.bench.nn.csv"
fi

if [ -n "$MNIST" ]; then
  K_ARGS=(); [ -n "$TRAIN_K" ] && K_ARGS=(--langevin-steps "$TRAIN_K")
  for loss in cd jem dsm; do
    model=$UVA; lossarg=$loss
    [ $loss = jem ] && model=$UVA_JEM
    [ $loss = dsm ] && lossarg=dsm:0.1
    kk=("${K_ARGS[@]}"); [ $loss = dsm ] && kk=()
    gpu_step "ebm.train.$loss" 150 "$EBM" train --backend gpu --data mnist --subset "$TRAIN_SUBSET" --model "$model" \
      --loss "$lossarg" --batch "$TRAIN_BATCH" "${kk[@]}" --steps "$TRAIN_STEPS" --seed 1 \
      --run-dir "$WORK/train-$loss" --force --checkpoint-every 1000000 --figure-every 1000000
  done
  gpu_step ebm.rbm.pcd1 150 "$EBM" rbm train --backend gpu --data "$MNIST" --hidden 500 --pcd 1 --batch 100 --epochs 1 \
    --limit "$RBM_LIMIT" --lr 0.05 --momentum 0 --seed 1 --run-dir "$WORK/rbm" --force
  gpu_step ebm.rbm.ais 150 "$EBM" rbm eval --backend gpu --data "$MNIST" --run-dir "$WORK/rbm" --ais-runs "$AIS_RUNS" \
    --betas "$AIS_BETAS" --reverse-gibbs 0 --limit "$AIS_LIMIT" --json "$RAW/ebm.rbm.ais.json"
else
  for s in ebm.train.cd ebm.train.jem ebm.train.dsm ebm.rbm.pcd1 ebm.rbm.ais; do skip $s "skipped: no MNIST"; done
fi
for c in $PARTICLE_CHAINS; do
  if [ -n "$PARTICLES" ]; then
    gpu_step "ebm.particles.$c" 120 "$PARTICLES" --energy ring8 --chains "$c" --frames "$FRAMES" --steps "$FRAME_STEPS" \
      --size "$FRAME_SIZE" --out "$WORK/particles-$c"
  else
    skip "ebm.particles.$c" "skipped: no particles binary (cargo build --release --example particles)"
  fi
done

# Discrete models (issue 30): block Gibbs, Metropolis and Swendsen–Wang site updates per second,
# and one epoch of DBM training (greedy pre-training, then PCD with a mean-field positive phase).
gpu_step ebm.bench.discrete 150 "$EBM" bench --suite discrete --backend gpu $DISCRETE_BENCH "${ROOF[@]}"
if [ -n "$MNIST" ]; then
  gpu_step ebm.dbm.train 150 "$EBM" dbm train --backend gpu --data "$MNIST" --layers "$DBM_LAYERS" --pretrain-epochs 1 \
    --epochs 1 --limit "$RBM_LIMIT" --batch 100 --pcd 1 --mean-field 10 --lr 0.005 --seed 1 --run-dir "$WORK/dbm" --force
else
  skip ebm.dbm.train "skipped: no MNIST"
fi

# --- peers ----------------------------------------------------------------------------------------------
# The same cases, as NAME:SAMPLER:CHAINS:STEPS.
CASES=""
add() { CASES="${CASES:+$CASES,}$1"; }
for t in $TORCHEBM; do IFS=: read -r d c s <<< "$t"; add "double_well$d:ula:$c:$s"; add "double_well$d:hmc:$c:$s"; done
add "double_well$MALA_D:mala:$MALA_C:$MALA_S"
for cs in $RING8_BENCH $RING8_BIG; do add "ring8:mala:$cs"; done
for cs in $MLP_BENCH_CASES; do IFS=: read -r n c s <<< "$cs"; add "$n:mala:$c:$s"; done
for cs in $MLP_BIG; do add "mlp2x128x128x1:mala:$cs"; done
CONV_CHAINS=$(for cs in $CONV_CASES; do printf '%s,' "${cs%%:*}"; done | sed 's/,$//')
CONV_STEPS=${CONV_CASES##*:}
# torch.compile compiles one step function per energy and sampler (and once more when the chain
# count first changes), 5-30 s each: on the GPU the headline energies (the TorchEBM size, ring8,
# the 2-128-128-1 MLP) at every size; a dry run on 2 CPU cores keeps one case of each energy and sampler.
# JAX compiles each case twice (warm-up and timed steps are static): a dry run gives it those
# cases too.
JAX_CASES=$CASES
COMPILE_CONV_CHAINS=$CONV_CHAINS
if [ "$DRY" = 1 ]; then
  COMPILE_CASES=$(echo "$CASES" | tr , '\n' | awk -F: '!seen[$1 FS $2]++' | paste -sd, -)
  JAX_CASES=$COMPILE_CASES
  COMPILE_CONV_CHAINS=${CONV_CHAINS%%,*}
else
  COMPILE_CASES=$(echo "$CASES" | tr , '\n' | grep -E "^(double_well$MALA_D|ring8|mlp2x128x128x1):" | paste -sd, -)
fi
TT_ARGS=(--steps "$TORCH_TRAIN_STEPS" --batch "$TRAIN_BATCH" --limit "$RBM_LIMIT" --ais-runs "$AIS_RUNS" --betas "$AIS_BETAS"
         --chains "$(echo $PARTICLE_CHAINS | tr ' ' ,)" --frames "$FRAMES" --frame-steps "$FRAME_STEPS" --size "$FRAME_SIZE")
[ -n "$TRAIN_K" ] && TT_ARGS+=(--langevin-steps "$TRAIN_K")
TT_WORKLOADS=particles
[ -n "$MNIST" ] && TT_ARGS+=(--data "$MNIST") && TT_WORKLOADS=cd,jem,dsm,rbm,ais,particles
# On the CPU (a dry run) one torch thread: on a small shared machine OpenMP's spinning threads
# slow small tensors down by 10x and more, and these figures only check the script.
THREADS=()
[ "$PEER_DEVICE" = cpu ] && THREADS=(--threads 1)
JAX_PLATFORM=$([ "$DRY" = 1 ] && echo cpu || echo gpu)

if have torch; then
  step peer.torch.langevin 150 "$PY" "$BENCH/torch_langevin.py" --device "$PEER_DEVICE" "${THREADS[@]}" --cases "$CASES" --csv "$RAW/peer.torch.langevin.csv"
  step peer.torch.nn 120 "$PY" "$BENCH/torch_nn.py" --device "$PEER_DEVICE" "${THREADS[@]}" --sampler ula --chains "$CONV_CHAINS" --steps "$CONV_STEPS" --csv "$RAW/peer.torch.nn.csv"
  step peer.torch.train 180 "$PY" "$BENCH/torch_train.py" --device "$PEER_DEVICE" "${THREADS[@]}" --workloads "$TT_WORKLOADS" "${TT_ARGS[@]}" --csv "$RAW/peer.torch.train.csv"
else
  for s in peer.torch.langevin peer.torch.nn peer.torch.train; do skip $s "not installed"; done
fi
if have jax; then
  NOBJ=(); have blackjax || NOBJ=(--no-blackjax)
  # Full runs time each JAX case for at least a second (the script's default); the dry and
  # smallest runs check the plumbing only, and --quick keeps to its time budget.
  case $MODE in dry-run|smallest|quick) NOBJ+=(--min-seconds 0) ;; esac
  step peer.jax 200 "$PY" "$BENCH/jax_samplers.py" --platform "$JAX_PLATFORM" "${NOBJ[@]}" --cases "$JAX_CASES" --csv "$RAW/peer.jax.csv"
else
  skip peer.jax "not installed"
fi
if [ -n "$MNIST" ] && have sklearn; then
  step peer.sklearn.rbm 150 "$PY" "$BENCH/sklearn_rbm.py" --data "$MNIST" --hidden 500 --batch 100 --epochs 1 --limit "$RBM_LIMIT"
elif [ -z "$MNIST" ]; then skip peer.sklearn.rbm "skipped: no MNIST"; else skip peer.sklearn.rbm "not installed"; fi
# THRML on the discrete bench's Ising workloads (L:CHAINS:SWEEPS lattices, gN:CHAINS:SWEEPS graphs).
for cs in $THRML_CASES; do
  IFS=: read -r size chains sweeps <<< "$cs"
  case $size in g*) wl=(--lattice 0 --graph "${size#g}"); name=graph${size#g} ;; *) wl=(--lattice "$size"); name=ising$size ;; esac
  if have thrml; then
    step "peer.thrml.$name" 150 "$PY" "$BENCH/thrml_ising.py" "${wl[@]}" --chains "$chains" --sweeps "$sweeps"
  else
    skip "peer.thrml.$name" "not installed"
  fi
done
# torch.compile last: its compilations are the slowest part, and a budget cut here costs least.
for s in langevin nn train; do
  case " $COMPILE_SCRIPTS " in *" $s "*) ;; *) skip "peer.torch-compile.$s" "not in this mode ($MODE)"; continue ;; esac
  if ! have torch; then skip "peer.torch-compile.$s" "not installed"; continue; fi
  case $s in
    langevin) step peer.torch-compile.langevin 240 "$PY" "$BENCH/torch_langevin.py" --compile --device "$PEER_DEVICE" "${THREADS[@]}" --cases "$COMPILE_CASES" --csv "$RAW/peer.torch-compile.langevin.csv" ;;
    nn) step peer.torch-compile.nn 150 "$PY" "$BENCH/torch_nn.py" --compile --device "$PEER_DEVICE" "${THREADS[@]}" --sampler ula --chains "$COMPILE_CONV_CHAINS" --steps "$CONV_STEPS" --csv "$RAW/peer.torch-compile.nn.csv" ;;
    train) step peer.torch-compile.train 240 "$PY" "$BENCH/torch_train.py" --compile --device "$PEER_DEVICE" "${THREADS[@]}" --workloads "$TT_WORKLOADS" "${TT_ARGS[@]}" --csv "$RAW/peer.torch-compile.train.csv" ;;
  esac
done

# --- the table and the JSON --------------------------------------------------------------------------------
for d in "$WORK"/train-*; do [ -f "$d/metrics.csv" ] && cp "$d/metrics.csv" "$RAW/ebm.$(basename "$d" | sed 's/^train-/train./').metrics.csv"; done
[ -f "$WORK/rbm/metrics.csv" ] && cp "$WORK/rbm/metrics.csv" "$RAW/ebm.rbm.pcd1.metrics.csv"
T_END=$(date +%s)
REPORT_PY=$PY
command -v "$REPORT_PY" >/dev/null 2>&1 || REPORT_PY=python3
"$REPORT_PY" "$HERE/report.py" --work "$WORK" --out "$OUT_DIR" --mode "$MODE" --budget "$BUDGET" \
  --started "$T_START" --ended "$T_END" --selftest "$SELFTEST" --loader "$LOADER" --icd "$ICD" \
  --ebm "$EBM" --command "$CMDLINE" --peer-device "$PEER_DEVICE"
RC=$?
(cd "$WORK" && tar czf "$OUT_DIR/raw.tar.gz" raw steps.tsv notes.txt) 2>/dev/null
echo
cat "$OUT_DIR/device.md" 2>/dev/null
echo
echo "wrote $OUT_DIR/device.md, $OUT_DIR/device.json and $OUT_DIR/raw.tar.gz in $((T_END - T_START)) s (exit $RC)"
rm -rf "$WORK"
exit $RC
