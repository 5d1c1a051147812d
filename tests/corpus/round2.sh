#!/usr/bin/env bash
# Round two of the bad-input corpus (issue 31): cases written after its fixes, none of them in
# bad_inputs.sh, tests/fuzz.rs or the reliability tests. They try what came since (discrete
# models, AIS shards and joins, datasets, quality, minimise, restore) and what a hostile user
# does to run directories, environment variables and special files; `ok` cases check their
# outputs against what is known, so a silently wrong output counts.
#
#   cargo build --release && tests/corpus/round2.sh          # the count on the last line
#   EBM=path/to/ebm TIMEOUT=60 tests/corpus/round2.sh
#
# What is counted, and the summary line, are lib.sh's. Exit status 0 iff all counts are 0.
source "$(dirname "$0")/lib.sh"
MNIST=$ROOT/tests/fixtures/mnist
D=$DIGITS

python3 - <<'PY'
import struct, os, json
def npy(path, shape, values, descr='<f4'):
    code = {'<f4': 'f', '|i1': 'b', '<i8': 'q'}[descr]
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
    h = h.ljust(117) + '\n'
    open(path, 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(h)) + h.encode() + struct.pack('<%d%s' % (len(values), code), *values))
# Boltzmann machine couplings: symmetric 4x4, one asymmetric, one 3x4, one with NaN, one huge.
w = [0, .5, 0, 0, .5, 0, .5, 0, 0, .5, 0, .5, 0, 0, .5, 0]
npy('w4.npy', [4, 4], w)
npy('w4asym.npy', [4, 4], [0, .5, 0, 0, .1] + w[5:])
npy('w34.npy', [3, 4], w[:12])
npy('w4nan.npy', [4, 4], [float('nan')] + w[1:])
npy('w4diag.npy', [4, 4], [1.0] + w[1:])
npy('b4.npy', [4], [0.1, 0, 0, 0])
npy('b3.npy', [3], [0.1, 0, 0])
npy('w1.npy', [1, 1], [0.0])
npy('w0.npy', [0, 0], [])
npy('wvec.npy', [16], w)
# Hopfield patterns: 3 of 16 +-1 values; one with a 0, one of 2s, one 1-D, one empty.
import random
random.seed(1)
p = [random.choice([-1, 1]) for _ in range(48)]
npy('pat.npy', [3, 16], p)
npy('pat_i1.npy', [3, 16], p, '|i1')
npy('pat0.npy', [3, 16], [0] + p[1:])
npy('pat2.npy', [3, 16], [2] * 48)
npy('pat1d.npy', [16], p[:16])
npy('pat_empty.npy', [0, 16], [])
# Edge lists.
open('edges.csv', 'w').write('0,1\n1,2\n2,3\n3,0\n')
open('edges_j.csv', 'w').write('0,1,0.5\n1,2,-0.5\n2,3,1\n')
open('self.csv', 'w').write('0,0\n0,1\n')
open('oob.csv', 'w').write('0,1\n1,9\n')
open('neg.csv', 'w').write('0,-1\n')
open('text.csv', 'w').write('a,b\nc,d\n')
open('frac.csv', 'w').write('0.5,1\n')
open('dup.csv', 'w').write('0,1\n1,0\n')
open('nanj.csv', 'w').write('0,1,nan\n')
open('empty_edges.csv', 'w').write('')
open('huge_vertex.csv', 'w').write('0,4294967295\n')
open('three.csv', 'w').write('0,1,1,1\n')
# Spin states for --init: 2 chains of a 4x4 lattice; wrong sizes and values.
npy('init16.npy', [2, 16], [1] * 32, '|i1')
npy('init15.npy', [2, 15], [1] * 30, '|i1')
npy('init_bad.npy', [2, 16], [3] * 32, '|i1')
npy('init_f.npy', [2, 16], [1.0] * 32)
npy('init_nan.npy', [2, 16], [float('nan')] * 32)
# Points and samples.
npy('p2.npy', [4, 2], [0, 0, 1, 1, -1, 0.5, 2, 2])
npy('p3.npy', [4, 3], [0] * 12)
npy('p2nan.npy', [2, 2], [0, float('nan'), 1, 1])
npy('p2_empty.npy', [0, 2], [])
npy('s784.npy', [20, 784], [((i * 7) % 255) / 127.5 - 1 for i in range(20 * 784)])
npy('s100.npy', [20, 100], [0.0] * 2000)
npy('s784nan.npy', [2, 784], [float('nan')] * 1568)
npy('s784_1.npy', [1, 784], [0.0] * 784)
open('edges.txt', 'w').write('0 1\n')
open('notjson.json', 'w').write('{"a": ')
open('shard_empty.json', 'w').write('')
open('shard_arr.json', 'w').write('[]')
open('shard_obj.json', 'w').write('{}')
open('shard_null.json', 'w').write('{"settings": null, "model": null, "runs": null, "forward": null}')
PY
mkfifo fifo.csv fifo.npy fifo.json 2>/dev/null
ln -s /etc/passwd passwd.csv
mkdir -p adir.csv adir.npy
TINY=(--model mlp:2,8,1 --batch 16 --train-size 200 --buffer-size 64 --langevin-steps 2 --backend cpu)
IMG=(--model 1x28x28/4k5s4p0/swish/flatten/8/swish/1/head:-f --loss dsm:0.1 --batch 16 --backend cpu)
"$EBM" train --data ring8 --steps 4 --checkpoint-every 2 --run-dir tr "${TINY[@]}" >/dev/null 2>&1
"$EBM" train --data "$MNIST" --steps 4 --run-dir img "${IMG[@]}" >/dev/null 2>&1
"$EBM" train --data "$MNIST" --steps 2 --run-dir cls --model 1x28x28/4k5s4p0/swish/flatten/10/head:lse --loss jem \
  --batch 16 --backend cpu >/dev/null 2>&1
"$EBM" rbm train --data "$D" --hidden 8 --epochs 1 --binarize threshold --backend cpu --run-dir rb >/dev/null 2>&1
for f in tr/checkpoint.safetensors img/checkpoint.safetensors rb/checkpoint.safetensors; do
  [ -f "$f" ] || { echo "setup failed: $EBM made no $f"; exit 2; }
done
AIS=(--held-out 8 --ais-runs 6 --betas 100 --leapfrog 2 --backend cpu)
"$EBM" eval --run-dir img "${AIS[@]}" --seed 3 >whole.txt 2>/dev/null
for i in 0 1 2; do "$EBM" eval --run-dir img "${AIS[@]}" --seed 3 --ais-shard $i/3 --json sh$i.json >/dev/null 2>&1; done
RBA=(--data "$D" --binarize threshold --backend cpu --ais-runs 12 --betas 200 --reverse-gibbs 20)
"$EBM" rbm eval --run-dir rb "${RBA[@]}" --ais-shard 0/2 --json rs0.json >/dev/null 2>&1
"$EBM" rbm eval --run-dir rb "${RBA[@]}" --ais-shard 1/2 --json rs1.json >/dev/null 2>&1

# 1. Discrete specs (issue 30): malformed, degenerate or oversized models.
for spec in ising:square:2 ising:square:0 ising:square:3x ising:square:x3 ising:square:3x3x3 ising:cubic:2 \
  ising:triangular:2 ising:hex:4 ising:square ising: ising:square:4,beta=nan ising:square:4,beta=-1 \
  ising:square:4,J=nan ising:square:4,J=1e39 ising:square:4,h=inf ising:square:4,beta \
  ising:square:4,beta=1,beta=2 ising:square:4,temp=1 ising:square:4,,beta=1 ising:square:65536x65536 \
  ising:cubic:100000 potts:1:square:4 potts:0:square:4 potts:-3:square:4 potts:x:square:4 potts:1000:square:4 \
  potts:3 potts:3:square:4,h=1 ising:graph:missing.csv ising:graph:self.csv \
  ising:graph:oob.csv,n=4 ising:graph:neg.csv ising:graph:text.csv ising:graph:frac.csv ising:graph:nanj.csv ising:graph:empty_edges.csv \
  ising:graph:huge_vertex.csv ising:graph:three.csv ising:graph:edges.txt ising:graph:fifo.csv \
  ising:graph:adir.csv ising:graph:passwd.csv ising:graph:edges.csv,n=2 ising:graph:edges.csv,n=0 \
  ising:graph:edges.csv,n=4294967296 ising:graph:oob.csv,n=abc bm:w4asym.npy bm:w34.npy bm:w4nan.npy bm:w4diag.npy bm:w0.npy \
  bm:wvec.npy bm:w4.npy,bias=b3.npy bm:missing.npy bm:fifo.npy hopfield:pat0.npy hopfield:pat2.npy \
  hopfield:pat1d.npy hopfield:pat_empty.npy hopfield:pat.npy,beta=-1 hopfield:missing.npy; do
  run refuse sample --energy "$spec" --chains 2 --steps 5
done
# Samplers and flags that do not fit the model.
run refuse sample --energy ising:square:4,h=0.5 --sampler swendsen-wang --chains 2 --steps 5
run refuse sample --energy ising:square:4,J=-1 --sampler wolff --chains 2 --steps 5
run refuse sample --energy ising:square:4,beta=inf --sampler wolff --chains 2 --steps 5
run refuse sample --energy ising:square:4 --sampler synchronous --backend gpu --chains 2 --steps 5
run refuse sample --energy ising:square:4 --sampler mala --chains 2 --steps 5
run refuse sample --energy ring8 --sampler gibbs --chains 2 --steps 5
run refuse sample --energy ring8 --sampler wolff --chains 2 --steps 5
run refuse sample --energy ising:square:4 --step-size 0.1 --chains 2 --steps 5
run refuse sample --energy ising:square:4 --leapfrog 3 --chains 2 --steps 5
run refuse sample --energy ising:square:4 --class 1 --chains 2 --steps 5
run refuse sample --energy ising:square:4 --fix 0=1 --chains 2 --steps 5
run refuse sample --energy ising:square:4 --chains 0 --steps 5
run refuse sample --energy ising:square:4 --chains 2 --steps 0
run refuse sample --energy ising:square:4 --chains 2 --steps 4000000000
run refuse sample --energy ising:square:1024 --chains 4000000 --steps 5
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --init init15.npy
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --init init_bad.npy
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --init init_nan.npy
run ok sample --energy ising:square:4 --chains 3 --steps 5 --init init16.npy --backend cpu
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --init fifo.npy
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --init down
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --init box:-1,1
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --out s.txt
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --out adir.npy
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --out missing/s.npy
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --png missing/s.png
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --out s.npy --png s.npy
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --diagnostics missing/d.json
run ok sample --energy ising:square:4 --chains 2 --steps 5 --tempering 1 --backend cpu
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --tempering 3 --max-temperature 0.5
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --temperatures 1,nan
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --temperatures 2,1
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --tempering 3 --swap-every 0
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --thin 0
run refuse sample --energy ising:square:4 --chains 2 --steps 5 --shard 2/2
run refuse sample --energy bm:w4.npy --sampler swendsen-wang --chains 2 --steps 5
run refuse score --energy ising:square:4 --points p2.npy
run refuse minimize --energy ising:square:4
run refuse eval --energy ising:square:4 --data "$MNIST"
run refuse restore --energy potts:3:square:4 --data "$MNIST"
run refuse train --data ring8 --model ising:square:4 --steps 2 --run-dir dtr
# Known answers: every output checked.
run ok sample --energy ising:square:4,beta=0 --chains 64 --steps 200 --backend cpu --out s0.npy
check "beta 0: spins +-1, mean near 0" "(lambda sh, v: sh == (64, 16) and set(v) <= {-1, 1} and abs(sum(v) / len(v)) < 0.1)(*npy('s0.npy'))"
run ok sample --energy ising:square:4,beta=3 --init up --chains 8 --steps 50 --backend cpu --out s3.npy
check "beta 3 from all up: stays magnetised" "(lambda sh, v: sum(v) / len(v) > 0.9)(*npy('s3.npy'))"
run ok sample --energy ising:square:4,beta=0.3 --chains 64 --steps 400 --backend cpu --diagnostics dis.json
check "exact expectation beside the estimate" "'exact' in out.lower()"
run ok sample --energy potts:3:square:4,beta=0 --chains 32 --steps 100 --backend cpu --out p3.npy
check "potts labels in 0..2" "set(npy('p3.npy')[1]) <= {0, 1, 2}"
run ok sample --energy bm:w4.npy,bias=b4.npy --chains 16 --steps 50 --backend cpu --out bm.npy
check "bm states 0/1" "set(npy('bm.npy')[1]) <= {0, 1} and npy('bm.npy')[0] == (16, 4)"
run ok sample --energy hopfield:pat_i1.npy --sampler synchronous --init pat_i1.npy --chains 3 --steps 5 --backend cpu --out hop.npy
check "stored patterns are fixed points" "npy('hop.npy')[1] == npy('pat_i1.npy')[1]"
run ok sample --energy ising:graph:edges_j.csv --sampler metropolis --chains 4 --steps 20 --backend cpu --out g.npy
check "graph of 4 vertices" "npy('g.npy')[0] == (4, 4)"
run ok sample --energy ising:square:4 --sampler wolff --chains 4 --steps 10 --backend cpu --png w.png
check "a PNG" "open('w.png', 'rb').read(8) == b'\x89PNG\r\n\x1a\n'"

# 2. AIS shards and joins (issue 26 and 31).
S="sh0.json,sh1.json,sh2.json"
run ok eval --run-dir img "${AIS[@]}" --seed 3 --ais-join "$S"
check "joined = one process" "out == open('whole.txt').read()"
for bad in 0/0 3/3 4/3 a/3 1 -1/3 0/4000000000 1/2/3 ""; do
  run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-shard "$bad" --json x.json
done
run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-shard 0/3
run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-shard 0/3 --json missing/x.json
run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-shard 0/3 --json img/checkpoint.safetensors
run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-shard 0/3 --ais-join "$S" --json x.json
run refuse eval --run-dir tr --ais-shard 0/3 --json x.json
run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-join sh0.json,sh0.json,sh2.json
run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-join sh2.json,sh1.json,sh0.json
run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-join sh0.json,sh1.json,sh2.json,sh2.json
run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-join sh0.json,sh1.json
run refuse eval --run-dir img "${AIS[@]}" --seed 4 --ais-join "$S"
run refuse eval --run-dir img --held-out 8 --ais-runs 9 --betas 100 --leapfrog 2 --backend cpu --seed 3 --ais-join "$S"
run refuse eval --run-dir img --held-out 8 --ais-runs 6 --betas 101 --leapfrog 2 --backend cpu --seed 3 --ais-join "$S"
run refuse eval --run-dir img --held-out 8 --ais-runs 6 --betas 100 --leapfrog 3 --backend cpu --seed 3 --ais-join "$S"
run refuse eval --run-dir img "${AIS[@]}" --seed 3 --base uniform --ais-join "$S"
run refuse eval --energy "net:img/checkpoint.safetensors" --data "$MNIST" --box -2,2 "${AIS[@]}" --seed 3 --ais-join "$S"
for f in missing.json fifo.json adir.npy shard_empty.json shard_arr.json shard_obj.json shard_null.json notjson.json rs0.json passwd.csv; do
  run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-join "sh0.json,$f,sh2.json"
done
run refuse rbm eval --run-dir rb "${RBA[@]}" --ais-join sh0.json,sh1.json,sh2.json
run refuse rbm eval --run-dir rb "${RBA[@]}" --ais-join rs1.json,rs0.json
run ok rbm eval --run-dir rb "${RBA[@]}" --ais-join rs0.json,rs1.json
check "an RBM join reports log Z" "'log Z' in out"
python3 - <<'PY'
import json
for name, edit in [('w_nan', lambda s: s['forward'][0]['log_weights'].__setitem__(0, 'nan')),
                   ('w_big', lambda s: s['forward'][0]['log_weights'].__setitem__(0, 1e308)),
                   ('w_str', lambda s: s['forward'][0]['log_weights'].__setitem__(0, '1')),
                   ('w_extra', lambda s: s['forward'][0]['log_weights'].append(0.0)),
                   ('runs_rev', lambda s: s.__setitem__('runs', [2, 0])),
                   ('runs_big', lambda s: s.__setitem__('runs', [0, 4000000000])),
                   ('base_name', lambda s: s['forward'][0].__setitem__('base', 'iso:1')),
                   ('base_z', lambda s: s['forward'][0].__setitem__('log_z_base', 1.5)),
                   ('acc', lambda s: s['forward'][0].__setitem__('acceptance', 'x')),
                   ('dropped', lambda s: s['forward'][0].__setitem__('dropped_runs', 1)),
                   ('dropped_neg', lambda s: s['forward'][0].__setitem__('dropped_runs', -1)),
                   ('no_forward', lambda s: s.__setitem__('forward', [])),
                   ('model', lambda s: s.__setitem__('model', 'abc')),
                   ('settings', lambda s: s['settings'].__setitem__('leapfrog', 9))]:
    s = json.load(open('sh1.json')); edit(s); open(name + '.json', 'w').write(json.dumps(s).replace('"nan"', 'NaN'))
PY
for m in w_nan w_big w_str w_extra runs_rev runs_big base_name base_z acc dropped dropped_neg no_forward model settings; do
  run refuse eval --run-dir img "${AIS[@]}" --seed 3 --ais-join "sh0.json,$m.json,sh2.json"
done

# 3. Run directories tampered with before a resume (train and rbm train).
tamper() { rm -rf t && cp -r "$1" t; }
for edit in 'echo "" > t/run.json' 'echo "[]" > t/run.json' 'echo null > t/run.json' \
  'python3 -c "import json;d=json.load(open(\"t/run.json\"));d[\"steps\"]=-1;json.dump(d,open(\"t/run.json\",\"w\"))"' \
  'python3 -c "import json;d=json.load(open(\"t/run.json\"));d[\"train_size\"]=1e30;json.dump(d,open(\"t/run.json\",\"w\"))"' \
  'python3 -c "import json;d=json.load(open(\"t/run.json\"));d[\"data\"]=\"two_moons\";json.dump(d,open(\"t/run.json\",\"w\"))"' \
  'python3 -c "import json;d=json.load(open(\"t/run.json\"));d[\"data_hash\"]=\"0\";json.dump(d,open(\"t/run.json\",\"w\"))"' \
  'python3 -c "import json;d=json.load(open(\"t/run.json\"));d[\"model\"]=7;json.dump(d,open(\"t/run.json\",\"w\"))"' \
  'rm t/run.json' 'rm t/checkpoint.safetensors' 'truncate -s 100 t/checkpoint.safetensors' \
  'cp rb/checkpoint.safetensors t/checkpoint.safetensors' 'cp img/checkpoint.safetensors t/checkpoint.safetensors' \
  'python3 -c "b=bytearray(open(\"t/checkpoint.safetensors\",\"rb\").read());b[-3]^=1;open(\"t/checkpoint.safetensors\",\"wb\").write(b)"' \
  'python3 -c "b=open(\"t/checkpoint.safetensors\",\"rb\").read().replace(b\"\\\"lr\\\":0.005\",b\"\\\"lr\\\":0.009\");open(\"t/checkpoint.safetensors\",\"wb\").write(b)"' \
  'echo "epoch,seconds,recon_error,pseudo_likelihood,executor" > t/metrics.csv' 'printf "step\n1\n" > t/metrics.csv' \
  'head -c 200 /dev/urandom > t/metrics.csv' 'python3 -c "l=open(\"t/metrics.csv\").read().splitlines();open(\"t/metrics.csv\",\"w\").write(\"\\n\".join([l[0]]+l[1:][::-1])+\"\\n\")"' \
  'rm t/metrics.csv && mkfifo t/metrics.csv' 'rm t/metrics.csv && ln -s /etc/passwd t/metrics.csv' \
  'rm -f t/.lock && mkdir t/.lock' 'rm -f t/.lock && mkfifo t/.lock' 'echo 1 > t/.lock' 'rm -f t/.lock && ln -s ../tr/run.json t/.lock' \
  'rm -rf t/figures && echo x > t/figures' 'chmod 000 t/run.json'; do
  tamper tr; eval "$edit"
  run any train --resume t --steps 8 --checkpoint-every 2 "${TINY[@]}"
  if [ "$rc" -eq 0 ]; then
    # Accepted: it must be the run an untampered resume gives.
    rm -rf ref && cp -r tr ref && "$EBM" train --resume ref --steps 8 --checkpoint-every 2 "${TINY[@]}" >/dev/null 2>&1
    check "tampered ($edit) and accepted: the unmutated result" "open('t/checkpoint.safetensors','rb').read() == open('ref/checkpoint.safetensors','rb').read()"
  fi
  chmod -R u+rw t 2>/dev/null
done
for edit in 'echo "{}" > t/run.json' 'rm t/run.json' 'cp tr/checkpoint.safetensors t/checkpoint.safetensors' \
  'echo "step,loss" > t/metrics.csv' 'python3 -c "import json;d=json.load(open(\"t/run.json\"));d[\"data_hash\"]=\"0\";json.dump(d,open(\"t/run.json\",\"w\"))"'; do
  tamper rb; eval "$edit"
  run refuse rbm train --data "$D" --hidden 8 --epochs 2 --binarize threshold --backend cpu --resume t
done
# Run dirs that are not directories, or not ours.
echo x >afile
run refuse train --data ring8 --steps 2 --run-dir afile "${TINY[@]}"
run refuse train --data ring8 --steps 2 --run-dir fifo.csv "${TINY[@]}"
ln -sfn tr trlink
run refuse train --data ring8 --steps 2 --run-dir trlink "${TINY[@]}"
run refuse rbm train --data "$D" --hidden 8 --epochs 1 --run-dir tr --backend cpu
run refuse train --data ring8 --steps 2 --run-dir rb "${TINY[@]}"
run refuse train --data ring8 --steps 2 --run-dir img --force "${TINY[@]}" --resume img

# 4. Fresh starts that fail must leave no run directory (half-made runs).
for args in "--data missing.csv" "--data p3.npy" "--data p2nan.npy" "--data p2_empty.npy" "--data fifo.csv" \
  "--data passwd.csv" "--data adir.csv" "--data ring8 --loss jem" "--data ring8 --loss dsm:0" "--data ring8 --loss dsm:nan" \
  "--data ring8 --loss bogus" "--data ring8 --model mlp:3,8,1" "--data ring8 --model 1x28x28/flatten/1" \
  "--data $MNIST --model mlp:2,8,1" "--data ring8 --lr-schedule exp:2" "--data ring8 --optimizer sgd --beta2 0.9" \
  "--data ring8 --steps 4000000000" "--data ring8 --batch 0" "--data ring8 --checkpoint-every 0" "--data ring8 --box 1,1"; do
  fresh new1
  # shellcheck disable=SC2086
  run refuse train $args --steps 3 --run-dir new1 --backend cpu
done
for args in "--data missing" "--data $D --hidden 0" "--data $D --binarize bogus" "--data $D --lr nan" \
  "--data p2.npy" "--data $D --batch 0" "--data $D --cd 0"; do
  fresh new2
  # shellcheck disable=SC2086
  run refuse rbm train $args --run-dir new2 --backend cpu
done

# 5. Environment variables: every one bounded and named when wrong.
for v in -1 nan inf abc 0 1e-300 1e300 ""; do
  EBM_PROGRESS_SECS=$v run any sample --chains 8 --steps 5 --backend cpu
done
for v in 0 -1 abc 100000 1e9; do RAYON_NUM_THREADS=$v run any sample --chains 8 --steps 5 --backend cpu; done
for v in 0 -5 abc 1e30 1T 1K 99999999999999999999; do EBM_MEMORY_BUDGET=$v run any sample --chains 8 --steps 5 --backend cpu; done
for v in 0 -1 abc 1e30; do EBM_WORK_LIMIT=$v run any sample --chains 8 --steps 5 --backend cpu; done
EBM_DATA_DIR=/nonexistent run refuse classify --energy "net:img/checkpoint.safetensors" --data mnist
EBM_DATA_DIR=afile run refuse classify --energy "net:img/checkpoint.safetensors" --data mnist
EBM_DATA_DIR=fifo.csv run refuse classify --energy "net:img/checkpoint.safetensors" --data mnist
TMPDIR=/nonexistent run ok sample --chains 8 --steps 5 --backend cpu
HOME=/nonexistent XDG_DATA_HOME=/nonexistent run ok data list
EBM_DATA_MIRROR=http://127.0.0.1:9/ run refuse data download mnist --dir dl1
EBM_DATA_MIRROR=notaurl run refuse data download mnist --dir dl2
EBM_DATA_MIRROR=ftp://127.0.0.1/ run refuse data download mnist --dir dl3
run refuse data download bogus --dir dl4
run refuse data download mnist --dir afile
run refuse data list --verify --bogus

# 6. Other commands: numbers and files out of range.
NET=net:img/checkpoint.safetensors
for a in "--limit 0" "--limit 4000000000" "--kid-subsets 0" "--kid-subsets 4000000000" "--train-limit 0" \
  "--samples s100.npy" "--samples s784nan.npy" "--samples s784_1.npy" "--samples fifo.npy" "--samples missing.npy" \
  "--classifier ring8" "--classifier net:tr/checkpoint.safetensors" "--png missing/q.png" "--json missing/q.json"; do
  # shellcheck disable=SC2086
  run refuse quality --samples s784.npy --data "$MNIST" --classifier "$NET" $a
done
run any quality --samples s784.npy --data "$MNIST" --classifier "$NET" --limit 50 --train-limit 50 --json q.json
for a in "--starts 0" "--starts 4000000000" "--method bogus" "--steps 0" "--lr nan" "--lr -1" "--grad-tol -1" \
  "--merge-within nan" "--box 1,0" "--init p3.npy" "--init p2nan.npy" "--init fifo.npy" "--fix 0=nan" "--out missing/m.csv"; do
  # shellcheck disable=SC2086
  run refuse minimize --energy ring8 $a --backend cpu
done
run ok minimize --energy '{"type": "gaussian", "mean": [1, -2], "std": [1, 1]}' --starts 4 --backend cpu --out min.csv
check "the quadratic's minimum (1, -2)" "all(abs(float(r.split(',')[0]) - 1) < 1e-3 and abs(float(r.split(',')[1]) + 2) < 1e-3 for r in open('min.csv').read().split()[1:])"
for a in "--mask bogus" "--mask random:1.5" "--mask random:nan" "--mask box:0,0,0,0" "--mask box:30,30,5,5" "--mask fifo.npy" \
  "--noise -1" "--noise nan" "--fidelity 0" "--steps 0" "--average 0" "--average 4000000000" "--limit 0" \
  "--split bogus" "--png missing/r.png" "--step-size nan"; do
  # shellcheck disable=SC2086
  run refuse restore --energy "$NET" --data "$MNIST" $a --backend cpu
done
for a in "--bins 0" "--bins 4000000000" "--limit 0" "--split bogus" "--json missing/c.json"; do
  # shellcheck disable=SC2086
  run refuse classify --energy "$NET" --data "$MNIST" $a --backend cpu
done
for a in "--percentile 101" "--percentile nan" "--percentile -1" "--limit 0" "--complexity nan" "--complexity -1" \
  "--ood $MNIST --json missing/o.json" "--data bogus" "--ood fifo.npy" "--in bogus" "--out noise"; do
  # shellcheck disable=SC2086
  run refuse ood --energy "$NET" --data "$MNIST" --ood noise $a --backend cpu
done
for a in "--points p3.npy" "--points p2nan.npy" "--points p2_empty.npy" "--ratio 0,9" "--ratio a,b" "--log-z ais --ais-runs 1" \
  "--log-z ais --betas 5" "--log-z ais --base bogus" "--log-z ais --base iso:0" "--log-z ais --base iso:nan" \
  "--log-z ais --base iso:-1" "--log-z ais --reverse-from p3.npy" "--log-z ais --leapfrog 0" "--out s.bogus" "--box 1,1"; do
  # shellcheck disable=SC2086
  run refuse score --energy ring8 --points p2.npy $a --backend cpu
done
run ok score --energy '{"type": "gaussian", "mean": [0, 0], "std": [1, 1]}' --points p2.npy --backend cpu --out sc.json
check "log-density of N(0, I) at (0, 0)" "abs(json.load(open('sc.json'))['records'][0]['log_density'] + math.log(2 * math.pi)) < 1e-4"
for a in "--init box:1,0" "--init box:nan,1" "--init box:-1" "--init bogus:1" "--shard 0/0" "--shard 3/2" "--shard x" \
  "--class 10" "--fix 5=1" "--fix 0=1,0=2"; do
  # shellcheck disable=SC2086
  run refuse sample --energy ring8 $a --chains 8 --steps 5 --backend cpu
done
# Generated images judged by classifiers (`classify --samples`), and chains started inside constraints.
CLS=net:cls/checkpoint.safetensors
for a in "--want 10" "--want 1 --want 2" "--samples s784nan.npy --want 1" "--samples s100.npy --want 1" \
  "--samples missing.npy --want 1" "--samples fifo.npy --want 1" "--want 1 --data $MNIST" "--want 1 --json missing/j.json"; do
  # shellcheck disable=SC2086
  run refuse classify --energy "$CLS" --samples s784.npy $a --backend cpu
done
run refuse classify --energy "$CLS" --want 1 --data "$MNIST"
run refuse classify --energy "$CLS" --energy "$CLS" --data "$MNIST"
run refuse classify --energy "$NET" --samples s784.npy --want 0
run ok classify --energy "$CLS" --samples s784.npy --want 3 --energy "$CLS" --want 3 --backend cpu --json j.json
check "classify --samples: one classifier twice agrees with itself" "(lambda j: j['all'] == j['classifiers'][0][2])(json.load(open('j.json')))"
HALF='{"type": "sum", "terms": [{"type": "gaussian", "mean": [0, 0], "std": [2, 2]}, {"type": "linear_inequality", "a": [-1, 0], "b": 0, "weight": 100}]}'
EMPTY='{"type": "sum", "terms": [{"type": "norm_ball", "radius": 1, "weight": 1}, {"type": "linear_inequality", "a": [-1, 0], "b": -5, "weight": 1}]}'
run refuse sample --energy ring8 --init feasible --chains 8 --steps 5 --backend cpu
run refuse sample --energy "$EMPTY" --init feasible --chains 8 --steps 5 --backend cpu
run refuse minimize --energy "$EMPTY" --init feasible --starts 4 --backend cpu
run ok sample --energy "$HALF" --init feasible --chains 64 --steps 1 --sampler rwmh --step-size 1e-6 --backend cpu --out if.npy
check "--init feasible: chains start in the half plane" "all(v >= -1e-4 for v in npy('if.npy')[1][0::2])"
run refuse data stroke-mnist --out st --limit 0
run refuse data stroke-mnist --out st --data bogus
run refuse data stroke-mnist --out st --data p2.npy
run ok sample --energy ring8 --init box:-0.5,0.5 --chains 16 --steps 1 --step-size 1e-6 --backend cpu --out ib.npy
check "--init box: chains start inside the box" "all(abs(v) <= 0.5 + 1e-3 for v in npy('ib.npy')[1])"
# Contrastive models (`--loss infonce`): training refusals, `probe`, `score --pairs`.
CTR=(--data "$MNIST" --model 1x28x28/4k5s4p0/swish/flatten/8 --loss infonce --batch 16 --backend cpu)
for a in "--batch 1" "--loss infonce:0" "--loss infonce:nan" "--loss infonce:-1" "--augment none" "--augment bogus" \
  "--augment rotate:500" "--augment zoom:1" "--augment shift:28" "--augment noise:-1" "--model 1x28x28/flatten/1"; do
  # shellcheck disable=SC2086
  run refuse train "${CTR[@]}" --steps 2 --run-dir ctr_bad $a
done
run refuse train --data ring8 --augment noise:0.1 --steps 2 --run-dir ctr_bad --backend cpu
run refuse train --data ring8 --model 2/8/silu/4 --loss infonce --augment shift:1 --steps 2 --run-dir ctr_bad --backend cpu
run ok train "${CTR[@]}" --steps 3 --run-dir ctr
CTRN=net:ctr/checkpoint.safetensors
for a in "--queries 1" "--epochs 0" "--augment bogus" "--augment shift:40" "--data bogus" "--data p2.npy" \
  "--train-limit 0" "--limit 0" "--features bogus" "--json missing/p.json" "--png missing/p.png"; do
  # shellcheck disable=SC2086
  run refuse probe --energy "$CTRN" --data "$MNIST" $a --backend cpu
done
run refuse probe --energy ring8 --data "$MNIST"
run refuse probe --energy "$NET" --data "$MNIST"
run ok probe --energy "$CTRN" --data "$MNIST" --queries 20 --epochs 1 --features output --json pr.json --backend cpu
check "probe: accuracies are shares" "all(0 <= v['test_accuracy'] <= 1 for v in json.load(open('pr.json'))['probe'].values())"
for a in "--pairs s100.npy" "--pairs s784nan.npy" "--pairs missing.npy" "--pairs s784_1.npy" "--pairs s784.npy --temperature 0" \
  "--pairs s784.npy --temperature nan" "--temperature 0.1" "--pairs s784.npy --log-z ais" "--pairs s784.npy --ratio 0,1" \
  "--pairs s784.npy --box -1,1" "--pairs s784.npy --out p.bogus"; do
  # shellcheck disable=SC2086
  run refuse score --energy "$CTRN" --points s784.npy $a --backend cpu
done
run refuse score --energy "$CLS" --points s784.npy --pairs s784.npy --backend cpu
run ok score --energy "$CTRN" --points s784.npy --pairs s784.npy --out pe.csv --backend cpu
check "score --pairs: a point paired with itself has cosine 1" "all(abs(float(l.split(',')[1]) - 1) < 1e-4 for l in open('pe.csv').read().split()[1:])"
run refuse merge --out m.npy
run refuse merge --out m.npy s0.npy s3.npy
run refuse bench --suite bogus
run refuse bench --suite discrete --steps 0

summary
