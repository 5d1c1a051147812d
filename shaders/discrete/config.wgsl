// The shape of a discrete model's site rule (shaders/discrete/spins.wgsl). This file holds
// the defaults naga validation sees; src/discrete/gpu.rs assembles each pipeline with its own
// values (`config_module`): Q states per site, table-driven (EXACT) or float probabilities,
// Metropolis or heat bath, zero temperature (Ising only).
const Q: u32 = 2u;
const EXACT: bool = true;
const METROPOLIS: bool = false;
const ZERO_T: bool = false;
