#!/usr/bin/env bash
# Bad-input corpus of issue 16: runs the release binary on ~120 adversarial requests and counts
# what must never happen.
#
#   cargo build --release && tests/corpus/bad_inputs.sh            # summary on stdout
#   EBM=path/to/ebm TIMEOUT=60 EBM_MEMORY_BUDGET=256M tests/corpus/bad_inputs.sh
#
# Each case says what it expects: `refuse` (exit status 1 or 2 with a message) or `ok`; what is
# counted, and the summary line, are lib.sh's. Exit status 0 iff all counts are 0.
source "$(dirname "$0")/lib.sh"

# Inputs: a gzip IDX bomb (3 MB inflating to 1 GB), a .npy declaring 10^11 rows, broken CSVs,
# safetensors with absurd headers, out-of-range digits, a valid weights file and two small runs.
python3 - <<'PY'
import gzip, struct, os, json
bomb = gzip.compress(bytes([0, 0, 8, 3]) + struct.pack('>III', 100000, 100, 100) + bytes(20 << 20))
open('bomb-idx3-ubyte.gz', 'wb').write(bomb)
os.makedirs('mn', exist_ok=True)
open('mn/train-images-idx3-ubyte.gz', 'wb').write(bomb)
open('mn/t10k-images-idx3-ubyte.gz', 'wb').write(bomb)
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 2), }"
open('huge.npy', 'wb').write(b"\x93NUMPY\x01\x00\x76\x00" + header.ljust(117).encode() + b'\n')
open('bad.csv', 'w').write('1,2\n3\n')
open('nan.csv', 'w').write('nan,1\n2,3\n')
open('inf.csv', 'w').write('1e39,1\n2,3\n')
open('empty.csv', 'w').write('')
open('trunc.safetensors', 'wb').write(struct.pack('<Q', 10**12))
open('zeros.safetensors', 'wb').write(bytes(64))
h = json.dumps({"w0": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 40000000000]}}).encode()
open('liar.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h)
open('digits.csv', 'w').write(','.join(['99'] * 65) + '\n')
open('spec.json', 'w').write('{"type": "double_well", "dim": 2}')
open('deep.json', 'w').write('[' * 100000)
sum40 = {"type": "sum", "terms": [{"type": "double_well"}] * 40}
open('sum40.json', 'w').write(json.dumps(sum40))
os.makedirs('adir.npy', exist_ok=True)
PY
"$EBM" init-mlp --dims 2,8,1 --out w.safetensors >/dev/null 2>&1
TINY=(--model mlp:2,8,1 --batch 16 --train-size 200 --buffer-size 64 --langevin-steps 2 --backend cpu)
"$EBM" train --data ring8 --steps 4 --run-dir tr "${TINY[@]}" >/dev/null 2>&1
"$EBM" rbm train --data "$DIGITS" --hidden 8 --epochs 1 --backend cpu --run-dir rb >/dev/null 2>&1
python3 -c "
rows=''.join(f'{i%7/7},{i%5/5}\n' for i in range(200)); open('p.csv','w').write(rows); open('p2.csv','w').write(rows)"
"$EBM" train --data p.csv --steps 4 --run-dir trp "${TINY[@]}" >/dev/null 2>&1
[ -f tr/checkpoint.safetensors ] && [ -f rb/checkpoint.safetensors ] || { echo "setup failed: $EBM cannot train"; exit 2; }

D=$DIGITS
dw='{"type": "double_well", "dim": 1000000000}'

# 1. Aborts on allocation: oversized requests, refused by the size plan.
run refuse sample --chains 4000000000
run refuse sample --chains 4000000000 --backend gpu
run refuse sample --chains 100000000 --backend cpu
run refuse sample --steps 4000000000 --thin 1 --trace t.npy
run refuse sample --steps 100000000 --thin 1 --chains 1000 --diagnostics d.json
run refuse sample --tempering 4000000000
run refuse sample --tempering 100000
run refuse sample --chains 10000000 --out big.csv
run refuse sample --energy "$dw"
run refuse sample --energy '{"type": "banana", "dim": 1000000000}' --backend gpu
run refuse sample --energy '{"type": "gaussian_mixture", "weights": [1], "means": [[0]], "stds": [[1]]}' --chains 4000000000
run refuse init-mlp --dims 2,100000,100000,1 --out w2.safetensors
run refuse init-mlp --dims 4294967295,1 --out w3.safetensors
run refuse init-net 2/100000/100000/1 --out n.safetensors
run refuse train --data ring8 --run-dir r1 --train-size 4000000000
run refuse train --data ring8 --run-dir r2 --buffer-size 4000000000
run refuse train --data ring8 --run-dir r3 --batch 4000000000
run refuse train --data ring8 --run-dir r4 --model mlp:2,100000,100000,1
run refuse eval --run-dir tr --held-out 4000000000
run refuse rbm eval --run-dir rb --data "$D" --ais-runs 4000000000
run refuse rbm eval --run-dir rb --data "$D" --ais-runs 100000
run refuse rbm sample --run-dir rb --chains 4000000000
run refuse rbm sample --run-dir rb --chains 100000000
run refuse rbm train --data "$D" --run-dir rb1 --hidden 4000000000
run refuse rbm train --data "$D" --run-dir rb2 --hidden 65000
run refuse rbm train --data "$D" --run-dir rb3 --batch 65535 --hidden 2000
run refuse rbm train --data "$D" --run-dir rb4 --batch 4000000000
run refuse bench --steps 4000000000
# Small inputs that balloon.
run refuse rbm train --data bomb-idx3-ubyte.gz --run-dir rb5
run refuse rbm train --data mn --run-dir rb6
run refuse rbm eval --run-dir rb --data mn
run refuse sample --energy /dev/zero
run refuse sample --energy /dev/urandom
run refuse sample --energy mlp:/dev/zero
run refuse sample --energy net:/dev/zero
run refuse sample --energy mlp:trunc.safetensors
run refuse sample --energy net:zeros.safetensors
run refuse sample --energy mlp:liar.safetensors
run refuse sample --energy deep.json
run refuse train --data huge.npy --run-dir r5
run refuse train --data /dev/zero --run-dir r6
run refuse train --data bad.csv --run-dir r7
run refuse train --data nan.csv --run-dir r8
run refuse train --data inf.csv --run-dir r9
run refuse train --data empty.csv --run-dir r10
run refuse rbm train --data digits.csv --run-dir rb7
run refuse rbm train --data /dev/zero --run-dir rb8

# 2. Hangs: absurd stated work, refused by the work plan.
run refuse sample --sampler hmc --leapfrog 4000000000
run refuse sample --sampler hmc --leapfrog 10001
run refuse sample --sampler hmc --leapfrog 10000 --chains 4096 --steps 4000000000
run refuse sample --sampler hmc --leapfrog 1000 --warmup 4000000000
run refuse sample --sampler hmc --leapfrog 100 --leapfrog-jitter 4000000000
run refuse sample --chains 1000000 --steps 4000000000 --energy sum40.json --backend cpu
run refuse train --data ring8 --run-dir r11 --steps 4000000000
run refuse train --data ring8 --run-dir r12 --langevin-steps 4000000000
run refuse rbm train --data "$D" --run-dir rb9 --cd 4000000000
run refuse rbm train --data "$D" --run-dir rb10 --pcd 100000
run refuse rbm train --data "$D" --run-dir rb11 --epochs 4000000000
run refuse rbm eval --run-dir rb --data "$D" --betas 4000000000000
run refuse rbm eval --run-dir rb --data "$D" --betas 18446744073709551615
run refuse rbm eval --run-dir rb --data "$D" --ais-runs 65535 --reverse-gibbs 4000000000
run refuse rbm sample --run-dir rb --chains 100000 --steps 4000000000
run refuse bench --steps 4000000000 --suite mlp --backend cpu
run ok sample --sampler hmc --leapfrog 10000 --chains 1 --steps 1 --step-size 0.001 --backend cpu

# 3. Software-adapter shader blow-ups: refused or moved to the tiled kernels, quickly.
run refuse sample --energy '{"type": "double_well", "dim": 512}' --backend gpu --chains 8 --steps 5
run refuse sample --energy '{"type": "double_well", "dim": 1000000}' --backend gpu --chains 8 --steps 5
run refuse sample --energy sum40.json --backend gpu --chains 8 --steps 5
run ok sample --energy '{"type": "double_well", "dim": 512}' --backend cpu --chains 8 --steps 5

# 4. Silently wrong outputs.
run refuse sample --energy mlp:w.safetensors --out w.safetensors
run refuse sample --energy spec.json --diagnostics spec.json --steps 40
run refuse sample --out x.npy --trace x.npy
run refuse sample --out x.npy --png ./x.npy
run refuse sample --out x.txt
run refuse sample --trace t.csv
run ok rbm sample --run-dir rb --out s.npy --chains 4 --steps 2
check "rbm sample --out .npy writes the pixel means as .npy" "npy('s.npy')[0] == (4, 64)"
run refuse rbm sample --run-dir rb --out rb/checkpoint.safetensors
run refuse train --data ring8 --run-dir r13 --max-energy-gap nan
run refuse train --data ring8 --run-dir r14 --max-energy-gap 0
run refuse sample --energy '{"type": "gaussian", "mean": [0], "std": [1e308]}'
run refuse sample --energy '{"type": "gaussian", "mean": [0], "std": [1e-300]}'
run refuse sample --energy '{"type": "gaussian", "mean": [0], "precision": [[1e-300]]}'
run refuse sample --energy '{"type": "gaussian_mixture", "weights": [1], "means": [[0]], "stds": [[1e-300]]}'
run refuse sample --energy '{"type": "double_well", "barrier": 1e-60}'
run refuse sample --energy '{"type": "banana", "dim": 2, "a": 1e39}'
run refuse sample --energy '{"type": "sum", "terms": []}'
run refuse sample --energy '{"type": "sum", "terms": ["ring8"], "slices": [[0, 18446744073709551615]]}'
run refuse sample --energy '{"type": "sum", "dim": 16777216, "terms": ["ring8"], "slices": [[16777215, 16777214]]}' --chains 4000000000
run refuse sample --energy '{}'
run refuse rbm eval --run-dir rb --data "$D" --betas 1
run ok sample --energy double_well --sampler ula --step-size 0.05 --init-std 1.5 --chains 64 --steps 40 --thin 2 --diagnostics d.json --trace t.npy --backend cpu

# 5. Numbers: every float flag after conversion to f32.
for v in nan inf -inf 1e39 1e-50; do run refuse sample --step-size="$v"; done
run refuse sample --step-size -1
run refuse sample --step-size 0
run refuse sample --init-std 0
run refuse sample --init-std nan
run refuse sample --target-accept nan --warmup 10
run refuse sample --target-accept 2 --warmup 10
run refuse sample --max-temperature nan --tempering 3
run refuse sample --max-temperature 0.5 --tempering 3
run refuse sample --temperatures 1,2,nan
run refuse sample --sampler ula --noise-scale nan
run refuse sample --sampler ula --grad-clamp inf
run refuse sample --sampler ula --grad-clamp -1
run refuse sample --sampler ula --box 1,0
run refuse sample --sampler ula --box nan,1
run refuse sample --sampler hmc --step-jitter 5
run refuse sample --sampler hmc --leapfrog 0
run refuse train --data ring8 --run-dir r15 --lr nan
run refuse train --data ring8 --run-dir r16 --lr=-1
run refuse rbm train --data "$D" --run-dir rb15 --lr=-1
run refuse train --data ring8 --run-dir r17 --beta2 1e39
run refuse train --data ring8 --run-dir r18 --reset-prob nan
run refuse train --data ring8 --run-dir r19 --step-size 1e-50
run refuse train --data ring8 --run-dir r20 --noise-scale inf
run refuse train --data ring8 --run-dir r21 --clip-norm nan
run refuse rbm train --data "$D" --run-dir rb12 --lr nan
run refuse rbm train --data "$D" --run-dir rb13 --momentum inf
run refuse rbm train --data "$D" --run-dir rb14 --batch 0
run refuse sample --thin 0
run refuse sample --steps 0
run refuse sample --chains 0
run refuse sample --diagnostics d2.json --steps 3

# 6. Run directories: a second trainer, resumes that change the data or a setting.
run refuse train --data ring8 --run-dir tr "${TINY[@]}"
run refuse train --resume tr --lr 0.5 "${TINY[@]}"
run refuse train --resume tr --data two_moons --steps 8 "${TINY[@]}"
run refuse train --resume tr --steps 2 "${TINY[@]}"
run refuse train --resume trp --data p2.csv --steps 8 "${TINY[@]}"
run ok train --resume trp --data ./p.csv --steps 8 "${TINY[@]}"
run refuse rbm train --data "$D" --resume rb --hidden 9 --epochs 2 --backend cpu
run refuse rbm train --data "$D" --run-dir rb --hidden 8 --backend cpu
run refuse eval --run-dir nothing
run refuse rbm sample --run-dir nothing
"$EBM" train --data ring8 --steps 1000000 --run-dir busy "${TINY[@]}" >/dev/null 2>&1 &
busy=$!
for _ in $(seq 50); do [ -s busy/.lock ] && break; sleep 0.1; done
run refuse train --data ring8 --steps 400 --run-dir busy --force "${TINY[@]}"
kill "$busy"; wait "$busy" 2>/dev/null

# 7. Late failures: unusable output paths found before the work.
run refuse sample --out adir.npy
run refuse sample --out missing/x.npy
run refuse sample --png missing/x.png
run refuse bench --csv missing/b.csv --quick
run refuse rbm sample --run-dir rb --chains 1000000 --out big.png
run refuse init-mlp --dims 2,1 --out /dev/null
run refuse init-mlp --dims 2,0,1 --out w4.safetensors
run refuse bench --steps 0

# 8. Noise: a plain command says nothing about XDG_RUNTIME_DIR.
run ok info
saved=${XDG_RUNTIME_DIR-}; unset XDG_RUNTIME_DIR
run ok sample --chains 16 --steps 10
run ok rbm sample --run-dir rb --chains 4 --steps 2 --out s.png
[ -n "$saved" ] && export XDG_RUNTIME_DIR=$saved

summary
