//! `ebm sample --png`: the figure of the final states, and the constraint boundaries it draws.

use std::path::Path;

use crate::energy::{Analytic, Energy};
use crate::io::figure::{self, Boundary, Heatmap, ImageGrid};

/// 2-d: the density exp(-E) on a grid around the samples, samples and constraint boundaries
/// drawn over it; images: a grid of the first 64 chains; otherwise histograms of the first 8
/// dimensions on a shared range. `title` names the run.
pub(super) fn write(path: &Path, title: &str, energy: &Energy, states: &[f32]) -> anyhow::Result<()> {
    let dim = energy.dim();
    let chains = states.len() / dim.max(1);
    if let Some((c, h, w)) = energy.image_shape() {
        // Pixels in [-1, 1] as images are scaled for training.
        let shown: Vec<f32> = states[..states.len().min(64 * dim)].iter().map(|v| 0.5 * (v + 1.0)).collect();
        let title = format!("{title}: the first {} chains", shown.len() / dim);
        ImageGrid::new(title, (c, h, w)).png(path, &shown)?;
        return Ok(());
    }
    if dim != 2 {
        let title = format!("{title}: marginals of dimensions 0-{} of {dim}", dim.min(8) - 1);
        figure::histograms_png(path, &title, states, dim, dim.min(8))?;
        return Ok(());
    }
    // The grid's energies can take seconds for a network or a group expert: say so first.
    println!("drawing {} (the energy on 240 x 240 points) ...", path.display());
    let (x_min, x_max, y_min, y_max) = figure::auto_bounds(states, 0.15, 0.002);
    let grid = figure::Grid2d { x_min, x_max, y_min, y_max, nx: 240, ny: 240 };
    let energies = crate::train::eval::energies(energy, &grid.points());
    let shown = &states[..states.len().min(2 * 3000)];
    let name = if shown.len() / 2 < chains {
        format!("{} of {chains} chains", shown.len() / 2)
    } else {
        format!("{chains} chains")
    };
    Heatmap::new(title, grid, &energies).samples(shown, name).boundaries(boundaries(energy)).pixel_size(3).png(path)?;
    Ok(())
}

/// The edges of the constraints among a 2-d energy's terms: in sums, and in slices onto one or
/// both axes. Penalties with a soft edge (box softplus) are drawn at their nominal edge.
pub(super) fn boundaries(energy: &Energy) -> Vec<Boundary> {
    let mut out = Vec::new();
    collect(energy, &[0, 1], &mut out);
    out
}

/// `axes[k]`: the plane's axis that the term's coordinate k is.
fn collect(energy: &Energy, axes: &[usize], out: &mut Vec<Boundary>) {
    let spread = |values: &[f32], fill: f32| {
        let mut v = [fill; 2];
        for (k, &a) in axes.iter().enumerate() {
            v[a] = values[k];
        }
        v
    };
    match energy {
        Energy::Sum { terms } => terms.iter().for_each(|(_, t)| collect(t, axes, out)),
        Energy::Slice { indices, inner, .. } => {
            if let Some(sub) = indices.iter().map(|&i| axes.get(i).copied()).collect::<Option<Vec<usize>>>() {
                collect(inner, &sub, out);
            }
        }
        Energy::Analytic(term) if axes.len() <= 2 => match term {
            Analytic::BoxConstraint(b) => {
                out.push(Boundary::Box { lo: spread(&b.lo, f32::NEG_INFINITY), hi: spread(&b.hi, f32::INFINITY) })
            }
            Analytic::Linear(l) => {
                let mut a = [0.0; 2];
                axes.iter().zip(&l.a).for_each(|(&ax, &v)| a[ax] += v);
                out.push(Boundary::Line { a, b: l.b });
            }
            Analytic::NormBall(n) if axes.len() == 2 => {
                out.push(Boundary::Circle { center: spread(&n.center, 0.0), radius: n.radius })
            }
            // On one axis a ball is the interval |x - c| <= r.
            Analytic::NormBall(n) => out.push(Boundary::Box {
                lo: spread(&[n.center[0] - n.radius], f32::NEG_INFINITY),
                hi: spread(&[n.center[0] + n.radius], f32::INFINITY),
            }),
            Analytic::Simplex(s) if s.dim == 2 => {
                out.push(Boundary::Segment(spread(&[1.0, 0.0], 0.0), spread(&[0.0, 1.0], 0.0)))
            }
            _ => {}
        },
        // Groups average their inner energy over transformations: no single edge to draw.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_come_from_sums_and_slices() {
        let spec = r#"{"type": "sum", "terms": ["ring8",
            {"type": "linear_inequality", "a": [-1, -1], "b": 0, "weight": 50},
            {"type": "norm_ball", "center": [0, 1], "radius": 2, "weight": 1}]}"#;
        let energy = crate::energy::spec::resolve_energy(spec).unwrap();
        assert_eq!(
            boundaries(&energy),
            vec![Boundary::Line { a: [-1.0, -1.0], b: 0.0 }, Boundary::Circle { center: [0.0, 1.0], radius: 2.0 }]
        );
        assert!(boundaries(&crate::energy::spec::resolve_energy("ring8").unwrap()).is_empty());
        // A 1-d box on x1 through a slice: a horizontal band.
        let sliced = r#"{"type": "sum", "terms": ["ring8", {"type": "box", "lo": [-1], "hi": [1], "weight": 1}], "slices": [null, [1]]}"#;
        let energy = crate::energy::spec::resolve_energy(sliced).unwrap();
        let band = Boundary::Box { lo: [f32::NEG_INFINITY, -1.0], hi: [f32::INFINITY, 1.0] };
        assert_eq!(boundaries(&energy), vec![band]);
    }
}
