//! Rust structs that mirror WGSL structs byte for byte (the kernels' uniform parameters). Each is
//! described once, beside its definition, by [`mirror!`]: its WGSL name, the kernel whose
//! assembled source declares it, and every field's name and byte offset (`offset_of!`, so two
//! fields of the same size swapped in Rust show). tests/layouts.rs compares them all with naga's
//! layout of the WGSL, member by member.

/// A Rust struct and the WGSL struct it mirrors.
#[derive(Clone, Debug)]
pub struct Mirror {
    /// The Rust struct's name.
    pub rust: &'static str,
    /// The WGSL struct's name.
    pub wgsl: &'static str,
    /// The kernel file whose assembled source declares it.
    pub kernel: &'static str,
    /// `size_of` the Rust struct.
    pub size: usize,
    /// (name, byte offset) of every field but padding, in order; fields of a nested struct by
    /// their own names (the WGSL declares them flat).
    pub fields: Vec<(&'static str, usize)>,
}

/// `mirror!(RustType, "kernel.wgsl", "WgslName", [field, nested.field, ...])`: the [`Mirror`]
/// of a `#[repr(C)]` struct (padding fields left out of the list).
macro_rules! mirror {
    ($ty:ident, $kernel:literal, $wgsl:literal, [$($($field:ident).+),* $(,)?]) => {
        $crate::gpu::layout::Mirror {
            rust: stringify!($ty),
            wgsl: $wgsl,
            kernel: $kernel,
            size: ::std::mem::size_of::<$ty>(),
            fields: vec![$((
                $crate::gpu::layout::last_segment(stringify!($($field).+)),
                ::std::mem::offset_of!($ty, $($field).+),
            )),*],
        }
    };
}
pub(crate) use mirror;

/// `reset_prob` of `settings.reset_prob` (however stringify! spaced it).
pub fn last_segment(path: &'static str) -> &'static str {
    path.rsplit('.').next().unwrap_or(path).trim()
}
