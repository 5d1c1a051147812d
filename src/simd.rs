//! Run-time choice of the vector unit for the CPU executor's hot loops.
//!
//! The default x86_64 target stops at SSE2, so a loop written for the compiler's
//! auto-vectorisation gets 4-wide vectors unless the function is compiled for wider ones.
//! [`vectorized!`] compiles one body several times, for AVX-512 and AVX2, and calls the widest
//! the CPU has. Every version computes the same bits: the body uses no fused multiply-adds
//! (Rust never contracts `a * b + c`), so vector width changes speed, not results.

/// Defines a function whose body is compiled for AVX-512, AVX2 and the baseline, and picks at
/// run time the widest the CPU supports (`avx2` before `fn`: AVX2 and the baseline only):
///
/// ```text
/// crate::simd::vectorized!(pub fn scale(v: &mut [f32], k: f32) {
///     v.iter_mut().for_each(|x| *x *= k)
/// });
/// let mut v = [1.0, 2.0, 3.0];
/// scale(&mut v, 2.0); // [2.0, 4.0, 6.0] (the test below)
/// ```
///
/// The arguments are plain `name: Type` pairs (no patterns, no generics); the body is inlined
/// into each version.
macro_rules! vectorized {
    ($(#[$meta:meta])* $vis:vis fn $($rest:tt)*) => {
        $crate::simd::vectorized!(@define true, $(#[$meta])* $vis fn $($rest)*);
    };
    (avx2 $(#[$meta:meta])* $vis:vis fn $($rest:tt)*) => {
        $crate::simd::vectorized!(@define false, $(#[$meta])* $vis fn $($rest)*);
    };
    (@define $avx512:literal, $(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if $avx512 && std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use vectorized;

#[cfg(test)]
mod tests {
    vectorized!(
        fn scale(v: &mut [f32], k: f32) {
            v.iter_mut().for_each(|x| *x *= k)
        }
    );

    #[test]
    fn a_vectorized_function_computes_its_body() {
        let mut v = [1.0, 2.0, 3.0];
        scale(&mut v, 2.0);
        assert_eq!(v, [2.0, 4.0, 6.0]);
    }
}
