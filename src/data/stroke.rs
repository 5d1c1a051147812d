//! MNIST relabelled by stroke weight, a second attribute of the same images (for composing a
//! digit model with a model of another attribute): an image is `HEAVY` when its ink, the sum
//! of its pixel values, is above the median ink of its digit's images in its split, else
//! `LIGHT`. Heavier strokes (thicker, or larger) carry more ink, and comparing within a digit
//! keeps the attribute independent of the digit: every digit splits about half and half.

use super::Dataset;

pub const LIGHT: u8 = 0;
pub const HEAVY: u8 = 1;

/// The stroke label of every image of a labelled set (None without digit labels).
pub fn stroke_labels(set: &Dataset) -> Option<Vec<u8>> {
    let digits = set.labels.as_ref()?;
    let ink: Vec<f32> = set.images.chunks_exact(set.dim().max(1)).map(|img| img.iter().sum()).collect();
    let mut medians = [0.0f32; 256];
    for digit in 0..=255u8 {
        let mut own: Vec<f32> = ink.iter().zip(digits).filter(|(_, d)| **d == digit).map(|(i, _)| *i).collect();
        if own.is_empty() {
            continue;
        }
        own.sort_by(f32::total_cmp);
        medians[digit as usize] = own[own.len() / 2];
    }
    Some(ink.iter().zip(digits).map(|(i, d)| if *i > medians[*d as usize] { HEAVY } else { LIGHT }).collect())
}
