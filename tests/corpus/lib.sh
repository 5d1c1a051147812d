# The bad-input corpora's shared runner (sourced by bad_inputs.sh and round2.sh): each case
# runs the release binary once and is counted by what must never happen.
#   signal    killed by a signal (abort, segfault) or a Rust panic message;
#   hang      still running after $TIMEOUT seconds (no corpus case states long work);
#   wrong     a request that must be refused succeeded, one that must succeed failed, or an
#             output's check (`check`) failed: a silently wrong output;
#   halfmade  a refused start left a run directory behind (`fresh`);
#   memory    a refused request whose peak RSS exceeded 2x the size plan's budget;
#   noise     stderr mentions XDG_RUNTIME_DIR;
#   message   a refusal without a message, or with Rust Debug text (`Some(`, `None`, `{ `).
# Every case gets a line (status, peak RSS, the command, stderr's first line) in
# $OUT/summary.txt. Needs bash, python3, GNU time (/usr/bin/time) and coreutils timeout.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EBM=${EBM:-$ROOT/target/release/ebm}
TIMEOUT=${TIMEOUT:-60}
export EBM_MEMORY_BUDGET=${EBM_MEMORY_BUDGET:-256M} RUST_BACKTRACE=0
OUT=$(mktemp -d "${TMPDIR:-/tmp}/ebm-corpus.XXXXXX")
DIGITS=$ROOT/data/digits
cd "$OUT" || exit 1
budget_kb=$(python3 -c "import re,sys;t=sys.argv[1].strip();m=re.fullmatch(r'([0-9.]+)([KMGT]?)(i?B)?',t,re.I);print(int(float(m[1])*1024**('KMGT'.find(m[2].upper())+1 if m[2] else 0)/1024))" "$EBM_MEMORY_BUDGET")
signal=0; hang=0; wrong=0; halfmade=0; memory=0; noise=0; message=0; n=0
# Set by `fresh DIR` for the next case only: a refusal must leave DIR as it was (absent).
fresh_dir=""

# run EXPECT ARGS...: one case; EXPECT is refuse, ok or any (neither outcome is wrong; only
# signals, hangs, memory and noise count). The status is left in $rc for `check`.
run() {
  local expect=$1; shift
  n=$((n + 1))
  /usr/bin/time -v -o time.txt timeout -k 5 "$TIMEOUT" "$EBM" "$@" >out.txt 2>err.txt
  rc=$?
  local rss; rss=$(awk '/Maximum resident/ {print $NF}' time.txt)
  local flag=""
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    hang=$((hang + 1)); flag="HANG"
  elif [ $rc -gt 128 ] || grep -q "terminated by signal" time.txt || grep -q "panicked" err.txt; then
    signal=$((signal + 1)); flag="SIGNAL"
  elif [ "$expect" = refuse ] && [ $rc -eq 0 ]; then
    wrong=$((wrong + 1)); flag="WRONG(accepted)"
  elif [ "$expect" = ok ] && [ $rc -ne 0 ]; then
    wrong=$((wrong + 1)); flag="WRONG(failed)"
  fi
  if [ $rc -ne 0 ] && [ $rc -lt 124 ]; then
    if ! grep -qv '^\s*$' err.txt || grep -qE 'Some\(|None\b|\{ [a-z_]+:' err.txt; then
      message=$((message + 1)); flag="$flag MESSAGE"
    fi
    if [ -n "$fresh_dir" ] && [ -e "$fresh_dir" ]; then halfmade=$((halfmade + 1)); flag="$flag HALFMADE"; fi
  fi
  fresh_dir=""
  if [ $rc -ne 0 ] && [ "${rss:-0}" -gt $((2 * budget_kb)) ]; then memory=$((memory + 1)); flag="$flag MEMORY"; fi
  if grep -q XDG_RUNTIME_DIR err.txt; then noise=$((noise + 1)); flag="$flag NOISE"; fi
  [ -n "$flag" ] && echo "$flag rc=$rc: $*"
  printf '%3d %-6s rc=%3s %8s KB %-16s %s | %s\n' $n "$expect" $rc "${rss:-?}" "$flag" "$(echo "$*" | cut -c1-90)" \
    "$(grep -v '^\s*$' err.txt | grep -v '^note:' | head -1 | cut -c1-140)" >>summary.txt
}

# fresh DIR: the next case starts a new run in DIR, which must not exist afterwards if refused.
fresh() { rm -rf "$1"; fresh_dir=$1; }

# check WHAT PYTHON: after an `ok` case, a Python expression over the case's files (stdout in
# out.txt) that must hold; a false or failing one counts as a silently wrong output.
check() {
  local what=$1 expr=$2
  [ "$rc" -eq 0 ] || return 0
  if ! python3 -c "
import json, sys, re, struct, ast, math
def npy(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<H', b[8:10])[0]
    h = ast.literal_eval(b[10:10 + n].decode())
    code = {'<f4': 'f', '|i1': 'b', '|u1': 'B'}[h['descr']]
    count = math.prod(h['shape'])
    return h['shape'], list(struct.unpack('<%d%s' % (count, code), b[10 + n:10 + n + count * struct.calcsize(code)]))
out = open('out.txt').read()
sys.exit(0 if ($expr) else 1)" 2>>check_err.txt; then
    wrong=$((wrong + 1)); echo "WRONG(check) $what"
    echo "    check failed: $what" >>summary.txt
  fi
}

summary() {
  echo "cases $n, signal $signal, hang $hang, wrong $wrong, halfmade $halfmade, memory over 2x the plan $memory, noise $noise, message $message (budget $EBM_MEMORY_BUDGET, timeout ${TIMEOUT}s; details in $OUT/summary.txt)"
  [ $((signal + hang + wrong + halfmade + memory + noise + message)) -eq 0 ]
}
