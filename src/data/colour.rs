//! Colour MNIST, made from MNIST's own files without downloading anything else: each digit
//! drawn in one colour on a background of another, both from [`PALETTE`].
//!
//! The rule, for image `i` of a split (`split` 0 for training, 1 for test) and a seed: the
//! Philox words `philox4x32_10([i, split, Stream::Init, 0], key(seed))` = (a, b, ..) choose the
//! digit's colour `f = PALETTE[⌊8 a / 2^32⌋]` and the background's `g = PALETTE[(f's index + 1 +
//! ⌊7 b / 2^32⌋) mod 8]`, never the same colour; a pixel of grey level t = k / 255 becomes
//! `round(g + t (f - g))` in each channel, so the stroke's anti-aliased edges blend the two.
//! Labels are MNIST's. The result is 3 x 28 x 28 uint8 images, channel-major.

use super::Dataset;
use crate::rng::{self, Stream};

/// Eight colours far apart: black, white, red, green, blue, yellow, magenta, cyan.
pub const PALETTE: [[u8; 3]; 8] = [
    [0, 0, 0],
    [255, 255, 255],
    [230, 25, 75],
    [60, 180, 75],
    [0, 130, 200],
    [255, 225, 25],
    [240, 50, 230],
    [70, 240, 240],
];

/// The palette indices (digit, background) of image `i` of `split`.
pub fn colours(seed: u64, split: u32, i: u32) -> (usize, usize) {
    let bits = rng::philox4x32_10([i, split, Stream::Init as u32, 0], rng::key(seed));
    let choose = |w: u32, k: u64| ((w as u64 * k) >> 32) as usize;
    let fg = choose(bits[0], 8);
    (fg, (fg + 1 + choose(bits[1], 7)) % 8)
}

/// The colour images of a grayscale set (values in [0, 1]): [rows, 3, H, W] uint8.
pub fn colourise(set: &Dataset, seed: u64, split: u32) -> Vec<u8> {
    let plane = set.height * set.width;
    let mut out = Vec::with_capacity(set.rows * 3 * plane);
    for (i, img) in set.images.chunks_exact(set.dim().max(1)).enumerate() {
        let (fg, bg) = colours(seed, split, i as u32);
        let (f, g) = (PALETTE[fg], PALETTE[bg]);
        for c in 0..3 {
            out.extend(img[..plane].iter().map(|&t| {
                let t = (t * 255.0).round() / 255.0;
                (g[c] as f32 + t * (f[c] as f32 - g[c] as f32)).round().clamp(0.0, 255.0) as u8
            }));
        }
    }
    out
}
