//! The lanes schedule of [`CpuSampler`]: blocks of [`LANES`] chains of an analytic energy
//! advance together, every operation of the scalar step (`run_chain`) on all lanes at once in
//! the same order, so each chain ends bit for bit where it would alone.

use super::*;
use crate::energy::EnergyInternals;

impl CpuSampler {
    /// [`Self::energy_grad_at`] for a block of lanes (analytic energies).
    #[inline(always)]
    fn energy_grad_lanes(&self, x: &[Lanes], g: &mut [Lanes], beta: Lanes) -> Lanes {
        g.fill(Lanes::splat(0.0));
        let e = self.energy.add_analytic_energy_grad(x, g, Lanes::splat(1.0));
        g.iter_mut().for_each(|v| *v *= beta);
        e
    }

    /// Runs global steps `first .. first + n` of the (at most [`LANES`]) chains `start ..`
    /// whose states are the rows of `xs`, as one block of lanes (analytic energies): every
    /// operation of [`Self::run_chain`] on all lanes at once, in the same order, so each chain
    /// ends bit for bit where it would alone. Lanes past the last row repeat it and stay idle.
    pub(super) fn run_lanes(&self, start: usize, xs: &mut [f32], first: u32, n: u32) -> Vec<ChainOutcome> {
        // Not AVX-512: there LLVM's loop vectoriser turns the loops over dimensions into
        // gathers across lanes (measured twice as slow as AVX2).
        crate::simd::vectorized!(avx2 fn run(s: &CpuSampler, start: usize, xs: &mut [f32], first: u32, n: u32) -> Vec<ChainOutcome> {
            s.run_lanes_generic(start, xs, first, n)
        });
        run(self, start, xs, first, n)
    }

    #[inline(always)]
    fn run_lanes_generic(&self, start: usize, xs: &mut [f32], first: u32, n: u32) -> Vec<ChainOutcome> {
        let (cfg, d, scale) = (&self.core.config, self.core.dim, &self.dim_scale);
        let rows = xs.len() / d;
        let lane_row = |l: usize| l.min(rows - 1);
        let chains: [Chain; LANES] = std::array::from_fn(|l| self.chain(start + lane_row(l)));
        let per_lane = |f: fn(&Chain) -> f32| Lanes(chains.map(|c| f(&c)));
        let (h, beta) = (per_lane(|c| c.h), per_lane(|c| c.beta));
        let ids = chains.map(|c| c.id);
        let zero = Lanes::splat(0.0);
        let mut x: Vec<Lanes> = (0..d).map(|i| Lanes(std::array::from_fn(|l| xs[lane_row(l) * d + i]))).collect();
        let mut g = vec![zero; d];
        let mut e = self.energy_grad_lanes(&x, &mut g, beta);
        let start_ok = finite_lanes(&x, &g, e);
        let mut out: Vec<ChainOutcome> = (0..rows).map(|_| ChainOutcome::default()).collect();
        let mut live = [false; LANES];
        for l in 0..rows {
            live[l] = !self.frozen[start + l] && start_ok[l];
            out[l].frozen = !self.frozen[start + l] && !start_ok[l];
        }
        let ran = live;
        let (mut y, mut gy, mut p, mut noise) = (vec![zero; d], vec![zero; d], vec![zero; d], vec![zero; d]);
        let hmc = cfg.kind == SamplerKind::Hmc;
        let stream = if hmc { Stream::Momentum } else { Stream::ProposalNoise };
        let key = rng::key(cfg.seed);
        let counters = |step: u32, stream: Stream, draw: u32| -> rng::LaneCounters {
            [ids, [step; LANES], [stream as u32; LANES], [draw; LANES]]
        };
        for step in first..first + n {
            if !live.contains(&true) {
                break;
            }
            for draw in 0..d.div_ceil(4) {
                let normals = rng::normals_lanes(&counters(step, stream, draw as u32), key);
                for comp in 0..4.min(d - 4 * draw) {
                    noise[4 * draw + comp] = Lanes(normals[comp]);
                }
            }
            let u = if cfg.kind == SamplerKind::Ula {
                [[0.0; LANES]; 4]
            } else {
                rng::uniforms_lanes(&counters(step, Stream::Accept, 0), key)
            };
            // The proposal: propose's arithmetic on lanes.
            let (mut eps, mut n_leap, mut kinetic0) = (zero, [0u32; LANES], zero);
            match cfg.kind {
                SamplerKind::Ula => {
                    let noise_scale = cfg.noise_scale.unwrap_or(-1.0);
                    let s = h.map(|h| langevin::ula_noise_std(noise_scale, h));
                    let clamp = cfg.grad_clamp.unwrap_or(0.0);
                    for i in 0..d {
                        y[i] = langevin::ula_coordinate(x[i], g[i], h, s, clamp, noise[i], cfg.box_clamp, scale[i]);
                    }
                }
                SamplerKind::Mala => {
                    let s = (Lanes::splat(2.0) * h).map(f32::sqrt);
                    for i in 0..d {
                        y[i] = langevin::mala_proposal(x[i], g[i], h, scale[i], s, noise[i]);
                    }
                }
                SamplerKind::Rwmh => {
                    for i in 0..d {
                        y[i] = x[i] + h * Lanes::splat(scale[i]) * noise[i];
                    }
                }
                SamplerKind::Hmc => {
                    for l in 0..LANES {
                        let t = self.trajectory(h.0[l], [0.0, u[1][l], u[2][l], 0.0]);
                        (eps.0[l], n_leap[l]) = (t.eps, t.n_leap);
                    }
                    for i in 0..d {
                        p[i] = if scale[i] > 0.0 { noise[i] / Lanes::splat(scale[i].sqrt()) } else { zero };
                        kinetic0 += Lanes::splat(0.5) * p[i] * p[i] * Lanes::splat(scale[i]);
                    }
                    y.copy_from_slice(&x);
                }
            }
            // Its evaluation.
            let (ey, finite) = if hmc {
                gy.copy_from_slice(&g);
                self.leapfrog_lanes(&live, beta, eps, n_leap, e, &mut y, &mut p, &mut gy)
            } else {
                let ey = self.energy_grad_lanes(&y, &mut gy, beta);
                (ey, finite_lanes(&y, &gy, ey))
            };
            // The verdict: verdict's and log_alpha's arithmetic on lanes.
            let log_alpha = match cfg.kind {
                SamplerKind::Mala => {
                    let (mut forward, mut backward) = (zero, zero);
                    for i in 0..d {
                        let (f, b) = langevin::mala_q_terms(x[i], y[i], g[i], gy[i], h, scale[i]);
                        forward += f;
                        backward += b;
                    }
                    langevin::mala_log_alpha(beta, e, ey, forward, backward, h)
                }
                SamplerKind::Rwmh => beta * (e - ey),
                SamplerKind::Hmc => {
                    let mut kinetic1 = zero;
                    for i in 0..d {
                        kinetic1 += Lanes::splat(0.5) * p[i] * p[i] * Lanes::splat(scale[i]);
                    }
                    beta * (e - ey) + kinetic0 - kinetic1
                }
                SamplerKind::Ula => zero,
            };
            let mut moves = [false; LANES];
            for l in 0..rows {
                if !live[l] {
                    continue;
                }
                if cfg.kind == SamplerKind::Ula {
                    moves[l] = finite[l];
                    if !finite[l] {
                        (live[l], out[l].frozen) = (false, true);
                    }
                    continue;
                }
                let log_alpha = if finite[l] { log_alpha.0[l] } else { -1.0e30 };
                out[l].prob_sum += accept_prob(log_alpha);
                moves[l] = u[0][l].ln() <= log_alpha;
                out[l].accepted += moves[l] as u32;
            }
            for i in 0..d {
                x[i] = y[i].select(&moves, x[i]);
                g[i] = gy[i].select(&moves, g[i]);
            }
            e = ey.select(&moves, e);
            if trace_slot(cfg, step).is_some() {
                for l in (0..rows).filter(|&l| live[l]) {
                    let row: Vec<f32> = x.iter().map(|v| v.0[l]).collect();
                    out[l].record(cfg, step, &row);
                }
            }
        }
        for l in 0..rows {
            if ran[l] {
                out[l].energy = Some(e.0[l]);
                for i in 0..d {
                    xs[l * d + i] = x[i].0[l];
                }
            }
        }
        out
    }

    /// [`leapfrog`] on the live lanes, each with its own step and length: y, p and gy (dE/dq at
    /// y, beta-scaled) end at each trajectory's end. Returns the final energies (a lane whose
    /// trajectory stopped being finite keeps `e`) and which lanes stayed finite.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn leapfrog_lanes(
        &self,
        live: &[bool; LANES],
        beta: Lanes,
        eps: Lanes,
        n_leap: [u32; LANES],
        e: Lanes,
        y: &mut [Lanes],
        p: &mut [Lanes],
        gy: &mut [Lanes],
    ) -> (Lanes, [bool; LANES]) {
        let d = self.core.dim;
        let half = Lanes::splat(0.5) * eps;
        for i in 0..d {
            p[i] -= half * gy[i];
        }
        let (mut moving, mut finite, mut e_end) = (*live, *live, e);
        let mut g_new = vec![Lanes::splat(0.0); d];
        let longest = (0..LANES).filter(|&l| live[l]).map(|l| n_leap[l]).max().unwrap_or(0);
        for step in 0..longest {
            for i in 0..d {
                y[i] = (y[i] + eps * Lanes::splat(self.dim_scale[i]) * p[i]).select(&moving, y[i]);
            }
            let e_new = self.energy_grad_lanes(y, &mut g_new, beta);
            let ok = finite_lanes(y, &g_new, e_new);
            let mut last = [false; LANES];
            for l in 0..LANES {
                if moving[l] && !ok[l] {
                    (finite[l], moving[l]) = (false, false);
                }
                last[l] = step + 1 == n_leap[l];
            }
            e_end = e_new.select(&moving, e_end);
            let k = half.select(&last, eps);
            for i in 0..d {
                gy[i] = g_new[i].select(&moving, gy[i]);
                p[i] = (p[i] - k * gy[i]).select(&moving, p[i]);
            }
            for l in 0..LANES {
                moving[l] &= !last[l];
            }
        }
        (e_end, finite)
    }
}

fn finite_lanes(x: &[Lanes], g: &[Lanes], e: Lanes) -> [bool; LANES] {
    let mut ok = e.finite();
    for v in x.iter().chain(g) {
        let f = v.finite();
        for l in 0..LANES {
            ok[l] &= f[l];
        }
    }
    ok
}
