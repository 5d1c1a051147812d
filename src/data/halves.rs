//! Two views of every image that share no pixel, for contrastive training on given pairs
//! (`ebm train --loss infonce --pairs`): the top half, rows [0, ⌊h/2⌋) kept and the rest black
//! (0), and the bottom half, the other rows kept. A model that finds an image's bottom half
//! from its top half has learned how the parts of a digit go together: the raw pixels of the
//! two views overlap nowhere, so they alone find little.

use super::Dataset;

/// The two halves of every image of `set` as uint8 (0..=255), each of `set`'s shape.
pub fn halves(set: &Dataset) -> [Vec<u8>; 2] {
    let (c, h, w) = set.shape();
    let cut = h / 2;
    let mut views = [Vec::with_capacity(set.images.len()), Vec::with_capacity(set.images.len())];
    for (i, &t) in set.images.iter().enumerate() {
        let row = i / w % h;
        let value = (t * 255.0).round().clamp(0.0, 255.0) as u8;
        views[0].push(if row < cut { value } else { 0 });
        views[1].push(if row < cut { 0 } else { value });
    }
    debug_assert_eq!(views[0].len(), set.rows * c * h * w);
    views
}
