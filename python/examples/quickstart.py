import numpy as np, ebm_gpu

s = ebm_gpu.sample("ring8", chains=4096, steps=1000, step_size=0.02, seed=1, diagnostics=True)
print(s.states.shape, s.states.dtype, "acceptance", round(s.diagnostics["acceptance"]["mean"], 3))
run = ebm_gpu.train("runs/py-ring8", data="ring8", steps=1000, seed=1, force=True)
print("loss", run.metrics["loss"][-1], "NLL", ebm_gpu.evaluate("runs/py-ring8")["nll"])
e, grad = run.energy().energy_grad(np.array([[0.0, 2.0], [0.0, 0.0]], dtype=np.float32))
print("E", e, "log p ratio", e[1] - e[0])
