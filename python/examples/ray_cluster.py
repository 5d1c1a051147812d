import numpy as np, ray, ebm_gpu, ebm_gpu.ray as eray

ray.init(address="auto")  # the cluster `ray start --head` made; ray.init() alone makes a local one
one = ebm_gpu.sample("ring8", chains=100_000, steps=1000, step_size=0.02, seed=7, backend="cpu")
split = eray.sample("ring8", chains=100_000, steps=1000, step_size=0.02, seed=7, backend="cpu", workers=2)
print("2 workers == 1 process:", np.array_equal(split.states, one.states))
run = eray.train("runs/ring8-dp", workers=2, steps=200, data="ring8", batch=256, seed=1, force=True)
print("data-parallel loss at step 200:", run.metrics["loss"][-1])
