//! 2-D toy datasets: determinism, shapes and moments against known densities, and point files.
//!
//! Statistical checks use 4 standard errors estimated from the same samples; reference values
//! (entropy, mean radius, second moments of the `ring8`/`grid25` presets) come from midpoint
//! quadrature on a fine grid, whose error is far below those tolerances (see `quadrature`).

use ebm_gpu::Error;
use ebm_gpu::data::toy::{Toy, load_points, read_points};
use ebm_gpu::energy::Energy;
use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::io::{npy, write_samples};
use ebm_gpu::rng::{self, Stream};
use std::path::{Path, PathBuf};

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ebm-toy-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sample mean and its standard error.
fn mean_se(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = xs.collect();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn assert_within_4se(what: &str, (mean, se): (f64, f64), expected: f64) {
    assert!(
        (mean - expected).abs() < 4.0 * se,
        "{what}: sample mean {mean:.5} vs expected {expected:.5} (4 standard errors = {:.5})",
        4.0 * se
    );
}

fn points(xs: &[f32]) -> impl Iterator<Item = (f64, f64)> + '_ {
    xs.chunks_exact(2).map(|p| (p[0] as f64, p[1] as f64))
}

/// Expectations under p = exp(-E) by the midpoint rule on [-half, half]^2 with step h:
/// returns (mass, E[-log p], E[r], E[x], E[y], E[x^2], E[y^2]).
///
/// For the presets' Gaussians (std >= 0.25) with h = 0.0125 the midpoint rule's error on these
/// smooth integrands is of order exp(-2 pi^2 std^2 / h^2) (below 1e-300), and the mass beyond the
/// box (more than 8 std from every centre) is below 1e-14, so the only error left is f32
/// rounding of the preset parameters, about 1e-6: negligible against the Monte Carlo
/// tolerances (>= 0.01) below.
fn quadrature(energy: &Energy, half: f64, h: f64) -> [f64; 7] {
    let cells = (2.0 * half / h).round() as usize;
    let mut acc = [0.0f64; 7];
    for i in 0..cells {
        let x = -half + (i as f64 + 0.5) * h;
        for j in 0..cells {
            let y = -half + (j as f64 + 0.5) * h;
            let e = energy.energy::<f64>(&[x, y]);
            let w = (-e).exp() * h * h;
            let terms = [1.0, e, x.hypot(y), x, y, x * x, y * y];
            for (a, t) in acc.iter_mut().zip(terms) {
                *a += w * t;
            }
        }
    }
    acc
}

#[test]
fn names_parse_and_unknown_names_are_errors() {
    for toy in Toy::ALL {
        assert_eq!(Toy::parse(toy.name()).unwrap(), toy);
        assert_eq!(toy.name().parse::<Toy>().unwrap(), toy);
        assert_eq!(toy.to_string(), toy.name());
    }
    assert_eq!(Toy::parse("Two-Moons").unwrap(), Toy::TwoMoons);
    assert_eq!(
        Toy::names(),
        ["ring8", "grid25", "two_moons", "swiss_roll", "checkerboard", "rings", "pinwheel", "two_spirals"]
    );
    match Toy::parse("moons") {
        Err(e @ Error::InvalidInput { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("dataset") && msg.contains("moons"), "{msg}");
            for name in Toy::names() {
                assert!(msg.contains(name), "`{msg}` should list {name}");
            }
        }
        other => panic!("expected an invalid-dataset error, got {other:?}"),
    }
}

#[test]
fn every_dataset_is_seeded_finite_and_prefix_stable() {
    let n = 2000;
    for toy in Toy::ALL {
        let a = toy.sample(n, 11);
        assert_eq!(a.len(), 2 * n, "{toy}");
        assert!(a.iter().all(|v| v.is_finite()), "{toy}: non-finite point");
        // Every shape lies well inside [-6, 6]^2 (the widest tails reach 6.7 std at most there).
        assert!(a.iter().all(|v| v.abs() < 6.0), "{toy}: point outside [-6, 6]^2");
        assert_eq!(a, toy.sample(n, 11), "{toy}: same seed, different points");
        let b = toy.sample(n, 12);
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same < n / 10, "{toy}: seeds 11 and 12 share {same} of {} coordinates", 2 * n);
        // Point i depends only on (seed, i).
        for k in [0, 1, 7, 1000] {
            assert_eq!(toy.sample(k, 11)[..], a[..2 * k], "{toy}: first {k} points depend on n");
        }
        assert!(toy.sample(0, 11).is_empty());
    }
}

#[test]
fn datasets_do_not_share_random_numbers() {
    // Different datasets use different counter steps, and none uses the chain initial states'
    // counters: compare the first point of ring8 with the documented counter.
    let seed = 99;
    let bits = rng::philox4x32_10([0, u32::MAX, Stream::Init as u32, 0], rng::key(seed));
    let k = ((bits[0] as u64 * 8) >> 32) as f64;
    let z = rng::normal4(seed, 0, u32::MAX, Stream::Init, 1);
    let t = k * std::f64::consts::TAU / 8.0;
    let want = [(2.0 * t.cos() + 0.25 * z[0] as f64) as f32, (2.0 * t.sin() + 0.25 * z[1] as f64) as f32];
    let got = Toy::Ring8.sample(1, seed);
    assert!((got[0] - want[0]).abs() < 1e-6 && (got[1] - want[1]).abs() < 1e-6, "{got:?} vs {want:?}");
    let init = rng::initial_states(seed, 0, 1, 2, 1.0);
    assert_ne!(got, init);
}

#[test]
fn ring8_matches_its_preset() {
    let energy = Toy::Ring8.true_energy().expect("ring8 has a true density");
    assert_eq!(energy, resolve_energy("ring8").unwrap());
    let [mass, entropy, mean_r, mean_x, mean_y, mean_xx, mean_yy] = quadrature(&energy, 4.5, 0.0125);
    assert!((mass - 1.0).abs() < 1e-5, "preset mass {mass}");
    // Nearly separated components: the entropy is a little below ln 8 + ln(2 pi e 0.25^2) =
    // 2.1447 (the overlap of neighbours 6.1 std apart; numpy's quadrature gives 2.138431), and
    // the mean radius is the Rice mean ~ 2 + 0.25^2 / 4.
    assert!(entropy < 2.1447 && entropy > 2.1347, "entropy {entropy}");
    assert!((mean_r - 2.0156).abs() < 1e-3, "mean radius {mean_r}");
    assert!(mean_x.abs() < 1e-9 && mean_y.abs() < 1e-9);
    assert!((mean_xx - 2.0625).abs() < 1e-5 && (mean_yy - 2.0625).abs() < 1e-5, "{mean_xx} {mean_yy}");

    let n = 20_000;
    let xs = Toy::Ring8.sample(n, 2024);
    assert_within_4se("x", mean_se(points(&xs).map(|p| p.0)), 0.0);
    assert_within_4se("y", mean_se(points(&xs).map(|p| p.1)), 0.0);
    assert_within_4se("radius", mean_se(points(&xs).map(|(x, y)| x.hypot(y))), mean_r);
    assert!((mean_se(points(&xs).map(|(x, y)| x.hypot(y))).0 - 2.0).abs() < 0.03);
    assert_within_4se("x^2", mean_se(points(&xs).map(|p| p.0 * p.0)), mean_xx);
    assert_within_4se("y^2", mean_se(points(&xs).map(|p| p.1 * p.1)), mean_yy);
    // The mean energy under the preset is the entropy, -E[log p].
    assert_within_4se("energy", mean_se(points(&xs).map(|(x, y)| energy.energy::<f64>(&[x, y]))), entropy);

    // Equal weights: each centre (angle 2 pi k / 8) is nearest to n/8 points, within 4 binomial SE.
    let mut counts = [0usize; 8];
    for (x, y) in points(&xs) {
        let k = (y.atan2(x) / (std::f64::consts::TAU / 8.0)).round().rem_euclid(8.0) as usize;
        counts[k] += 1;
    }
    let (p, nf) = (1.0 / 8.0, n as f64);
    let se = (nf * p * (1.0 - p)).sqrt();
    for (k, &c) in counts.iter().enumerate() {
        assert!((c as f64 - nf * p).abs() < 4.0 * se, "centre {k}: {c} points of {n}");
    }
}

#[test]
fn grid25_matches_its_preset() {
    let energy = Toy::Grid25.true_energy().expect("grid25 has a true density");
    assert_eq!(energy, resolve_energy("grid25").unwrap());
    let [mass, entropy, _, mean_x, mean_y, mean_xx, _] = quadrature(&energy, 6.5, 0.0125);
    assert!((mass - 1.0).abs() < 1e-5, "preset mass {mass}");
    // A little below ln 25 + ln(2 pi e 0.3^2) = 3.6489 for separated components (numpy's
    // quadrature gives 3.644836); E[x^2] = 8 + 0.09.
    assert!(entropy < 3.6489 && entropy > 3.6389, "entropy {entropy}");
    assert!((mean_xx - 8.09).abs() < 1e-4, "{mean_xx}");

    let n = 20_000;
    let xs = Toy::Grid25.sample(n, 5);
    assert_within_4se("x", mean_se(points(&xs).map(|p| p.0)), mean_x);
    assert_within_4se("y", mean_se(points(&xs).map(|p| p.1)), mean_y);
    assert_within_4se("x^2", mean_se(points(&xs).map(|p| p.0 * p.0)), mean_xx);
    assert_within_4se("energy", mean_se(points(&xs).map(|(x, y)| energy.energy::<f64>(&[x, y]))), entropy);
    for toy in [Toy::TwoMoons, Toy::SwissRoll, Toy::Checkerboard, Toy::Rings, Toy::Pinwheel, Toy::TwoSpirals] {
        assert!(toy.true_energy().is_none(), "{toy}");
    }
}

/// Distance from p to the moon arc c + 2 (cos t, sin t), t in [lo, lo + pi].
fn arc_distance((x, y): (f64, f64), (cx, cy): (f64, f64), lo: f64) -> f64 {
    use std::f64::consts::PI;
    let a = (y - cy).atan2(x - cx);
    // The angle in [lo, lo + pi] nearest to a (on the circle).
    let rel = (a - lo).rem_euclid(2.0 * PI);
    let offset = match rel {
        r if r <= PI => r,
        r if r < 1.5 * PI => PI,
        _ => 0.0,
    };
    let t = lo + offset;
    (x - cx - 2.0 * t.cos()).hypot(y - cy - 2.0 * t.sin())
}

#[test]
fn two_moons_has_two_clusters() {
    // Histogram on cells of side 0.25 and keep the cells holding at least 30% of the fullest
    // one. Along a moon the density (noise std 0.2 across a band) keeps cells near its spine
    // above that; at the narrowest gap between the moons (1.0 wide, so 2.5 std from each spine)
    // it is about 2 exp(-2.5^2 / 2) = 9% of the peak: with ~120 points in a peak cell, a gap cell
    // expects ~11 (Poisson sd 3.3) against a threshold of ~36.
    let n = 20_000;
    let xs = Toy::TwoMoons.sample(n, 3);
    let (lo, side, cells) = (-4.0, 0.25, 32usize);
    let mut hist = vec![0usize; cells * cells];
    for (x, y) in points(&xs) {
        let (i, j) = (((x - lo) / side).floor(), ((y - lo) / side).floor());
        assert!(i >= 0.0 && j >= 0.0 && (i as usize) < cells && (j as usize) < cells, "point ({x}, {y})");
        hist[j as usize * cells + i as usize] += 1;
    }
    let peak = *hist.iter().max().unwrap();
    let keep: Vec<bool> = hist.iter().map(|&c| c as f64 >= 0.3 * peak as f64).collect();
    // Connected components (4-neighbour) of the kept cells.
    let mut label = vec![usize::MAX; cells * cells];
    let mut masses = Vec::new();
    for start in 0..cells * cells {
        if !keep[start] || label[start] != usize::MAX {
            continue;
        }
        let id = masses.len();
        let (mut stack, mut mass) = (vec![start], 0usize);
        label[start] = id;
        while let Some(c) = stack.pop() {
            mass += hist[c];
            let (i, j) = (c % cells, c / cells);
            let nbrs = [(i.wrapping_sub(1), j), (i + 1, j), (i, j.wrapping_sub(1)), (i, j + 1)];
            for (a, b) in nbrs {
                if a < cells && b < cells && keep[b * cells + a] && label[b * cells + a] == usize::MAX {
                    label[b * cells + a] = id;
                    stack.push(b * cells + a);
                }
            }
        }
        masses.push(mass);
    }
    assert_eq!(masses.len(), 2, "components of the thresholded density: masses {masses:?}");
    // The two clusters are the two moons: every kept cell of a component lies nearer to its
    // moon's spine than to the other's.
    let upper = ((-1.0, -0.2), 0.0);
    let lower = ((1.0, 0.8), std::f64::consts::PI);
    let mut moon_of = [None::<bool>; 2];
    for c in (0..cells * cells).filter(|&c| keep[c]) {
        let centre = (lo + side * ((c % cells) as f64 + 0.5), lo + side * ((c / cells) as f64 + 0.5));
        let is_upper = arc_distance(centre, upper.0, upper.1) < arc_distance(centre, lower.0, lower.1);
        let m = moon_of[label[c]].get_or_insert(is_upper);
        assert_eq!(*m, is_upper, "component {} mixes cells of both moons", label[c]);
    }
    assert_ne!(moon_of[0], moon_of[1]);
    assert!(masses.iter().sum::<usize>() as f64 > 0.7 * n as f64, "the clusters hold only {masses:?} of {n} points");
    // Equal weights: the point reflection through (0, 0.3) swaps the moons, so the points nearer
    // the upper spine are n/2 within 4 binomial SE.
    let nearer_upper =
        points(&xs).filter(|&p| arc_distance(p, upper.0, upper.1) < arc_distance(p, lower.0, lower.1)).count();
    let se = (n as f64 * 0.25).sqrt();
    assert!((nearer_upper as f64 - n as f64 / 2.0).abs() < 4.0 * se, "{nearer_upper} of {n} nearer the upper moon");

    // And every point lies within 6 noise std (1.2) of one of the two spines.
    for p in points(&xs) {
        let d = arc_distance(p, upper.0, upper.1).min(arc_distance(p, lower.0, lower.1));
        assert!(d < 1.2, "point {p:?} is {d} from both moons");
    }
}

#[test]
fn checkerboard_points_fall_on_the_on_squares_only() {
    let n = 16_000;
    let xs = Toy::Checkerboard.sample(n, 8);
    let mut counts = std::collections::HashMap::new();
    for (x, y) in points(&xs) {
        assert!((-4.0..4.0).contains(&x) && (-4.0..4.0).contains(&y), "({x}, {y}) off the board");
        let (i, j) = ((x / 2.0).floor() as i64, (y / 2.0).floor() as i64);
        assert!((i + j).rem_euclid(2) == 0, "({x}, {y}) is on an off square ({i}, {j})");
        *counts.entry((i, j)).or_insert(0usize) += 1;
    }
    // All 8 on squares, uniformly: n/8 each within 4 binomial SE.
    assert_eq!(counts.len(), 8, "{counts:?}");
    let se = (n as f64 / 8.0 * 7.0 / 8.0).sqrt();
    for (sq, &c) in &counts {
        assert!((c as f64 - n as f64 / 8.0).abs() < 4.0 * se, "square {sq:?}: {c}");
    }
    // Uniform within a square: the mean offset from the square's corner is 1 in each coordinate
    // (uniform on [0, 2): sd 1/sqrt(3)).
    assert_within_4se("x offset", mean_se(points(&xs).map(|p| p.0.rem_euclid(2.0))), 1.0);
    assert_within_4se("y offset", mean_se(points(&xs).map(|p| p.1.rem_euclid(2.0))), 1.0);
}

#[test]
fn rings_spirals_and_pinwheel_have_their_shapes() {
    let n = 8000;
    // Rings: equal mass on radii 0.75, 1.5, 2.25, 3 (noise sd 0.08, so the radial gaps of 0.75
    // are over 4.6 sd from every ring at their midpoints).
    let xs = Toy::Rings.sample(n, 4);
    let mut counts = [0usize; 4];
    for (x, y) in points(&xs) {
        let k = ((x.hypot(y) / 0.75).round() as usize).clamp(1, 4) - 1;
        counts[k] += 1;
    }
    let se = (n as f64 * 0.25 * 0.75).sqrt();
    assert!(counts.iter().all(|&c| (c as f64 - n as f64 / 4.0).abs() < 4.0 * se), "{counts:?}");
    // Two spirals and pinwheel are point-symmetric mixtures (arms at angle pi and 2 pi k / 5):
    // mean 0 within 4 SE.
    for toy in [Toy::TwoSpirals, Toy::Pinwheel] {
        let xs = toy.sample(n, 4);
        assert_within_4se(&format!("{toy} x"), mean_se(points(&xs).map(|p| p.0)), 0.0);
        assert_within_4se(&format!("{toy} y"), mean_se(points(&xs).map(|p| p.1)), 0.0);
    }
    // Swiss roll: radius t / 5 with t uniform on [1.5 pi, 4.5 pi], so the mean radius is about
    // 3 pi / 5 = 1.885 (noise of sd 0.2 adds ~0.2^2 / (2 r) ~ 0.01).
    let xs = Toy::SwissRoll.sample(n, 4);
    let (r, _) = mean_se(points(&xs).map(|(x, y)| x.hypot(y)));
    assert!((r - 1.885).abs() < 0.04, "swiss roll mean radius {r}");
}

fn expect_format_error(path: &Path, contains: &str) {
    match load_points(path.to_str().unwrap(), 10, 0) {
        Err(e @ (Error::Format { .. } | Error::Io { .. })) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "`{msg}` should name the file");
            assert!(msg.contains(contains), "`{msg}` should say `{contains}`");
        }
        other => panic!("{}: expected an error naming the file, got {other:?}", path.display()),
    }
}

#[test]
fn point_files_round_trip_and_bad_files_are_errors() {
    let dir = scratch("files");
    let pts = Toy::TwoSpirals.sample(257, 1);
    for name in ["p.npy", "p.csv", "P.CSV"] {
        let path = dir.join(name);
        write_samples(&path, &pts, 257, 2).unwrap();
        // A file gives all its rows, whatever n and seed say.
        assert_eq!(load_points(path.to_str().unwrap(), 3, 9).unwrap(), pts, "{name}");
        assert_eq!(read_points(&path).unwrap(), pts, "{name}");
    }
    // Toy names still win over files; n points are drawn.
    assert_eq!(load_points("pinwheel", 5, 2).unwrap(), Toy::Pinwheel.sample(5, 2));

    let three = dir.join("three.npy");
    write_samples(&three, &[0.0; 12], 4, 3).unwrap();
    expect_format_error(&three, "[4, 3]");
    let three_csv = dir.join("three.csv");
    std::fs::write(&three_csv, "x,y,z\n1,2,3\n4,5,6\n").unwrap();
    expect_format_error(&three_csv, "[2, 3]");
    let one_d = dir.join("one_d.npy");
    npy::write_f32(&one_d, &[1.0, 2.0, 3.0, 4.0], &[4]).unwrap();
    expect_format_error(&one_d, "[4, 1]");
    let cube = dir.join("cube.npy");
    npy::write_f32(&cube, &[0.0; 8], &[2, 2, 2]).unwrap();
    expect_format_error(&cube, "shape");
    let empty_npy = dir.join("empty.npy");
    npy::write_f32(&empty_npy, &[], &[0, 2]).unwrap();
    expect_format_error(&empty_npy, "0 rows");
    let empty_csv = dir.join("empty.csv");
    std::fs::write(&empty_csv, "x,y\n").unwrap();
    expect_format_error(&empty_csv, "no data rows");
    let nan_csv = dir.join("nan.csv");
    std::fs::write(&nan_csv, "x,y\n0,1\n2,3\n4,5\nNaN,6\n").unwrap();
    expect_format_error(&nan_csv, "row 3");
    let inf_npy = dir.join("inf.npy");
    npy::write_f32(&inf_npy, &[0.0, 1.0, 2.0, f32::INFINITY], &[2, 2]).unwrap();
    expect_format_error(&inf_npy, "row 1");
    let missing = dir.join("missing.npy");
    expect_format_error(&missing, "");
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, b"not numpy").unwrap();
    expect_format_error(&garbage, "magic");

    // Neither a dataset name nor a .npy/.csv file: an invalid-dataset error listing the names.
    let txt = dir.join("points.txt");
    std::fs::write(&txt, "0,1\n").unwrap();
    for spec in ["spiral", txt.to_str().unwrap()] {
        match load_points(spec, 10, 0) {
            Err(e @ Error::InvalidInput { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(spec) && msg.contains("two_spirals"), "{msg}");
            }
            other => panic!("{spec}: expected an invalid-dataset error, got {other:?}"),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
