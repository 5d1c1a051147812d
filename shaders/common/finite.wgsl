// WGSL has no isNan/isInf: a float is finite unless its exponent bits are all ones.
fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7F800000u) != 0x7F800000u;
}
