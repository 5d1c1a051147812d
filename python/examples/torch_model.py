import numpy as np, torch, ebm_gpu

net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.SiLU(), torch.nn.Linear(64, 1))
energy = ebm_gpu.from_torch(net, head="f")  # E(x) = net(x); weights copied in memory
x = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
print(energy.arch, np.abs(energy.energy_grad(x)[0] - net(torch.from_numpy(x))[:, 0].detach().numpy()).max())
s = ebm_gpu.sample(net, chains=1024, steps=500, sampler="mala", step_size=0.05)
print(s.states.shape)
