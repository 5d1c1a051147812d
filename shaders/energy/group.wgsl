// Helpers of the generated group energies (src/energy/group.rs writes their functions).

// The pixel that element k of an image group moves to pixel p of a [C, side, side] state:
// k % 4 quarter turns (row, col) -> (col, side-1-row), then for k >= 4 a column mirror. The
// twin of `image_source` in src/energy/group.rs; the generated group functions call it.
fn group_image_source(p: u32, k: u32, side: u32) -> u32 {
    let plane = side * side;
    let c = p / plane;
    let r = p % plane;
    var a = r / side;
    var b = r % side;
    for (var q = 0u; q < k % 4u; q++) {
        let a0 = a;
        a = b;
        b = side - 1u - a0;
    }
    if (k >= 4u) {
        b = side - 1u - b;
    }
    return c * plane + a * side + b;
}
