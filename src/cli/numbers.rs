//! The value parser of every floating-point flag: the number is converted to the f32 (or f64)
//! the program computes with, and refused when that conversion makes it non-finite or rounds a
//! non-zero value to zero, with the user's text in clap's message (which names the flag).
//! Range checks (positive, below 1) stay with the code that knows them.

/// A finite f32 that is zero only if the user wrote zero.
pub fn finite_f32(text: &str) -> Result<f32, String> {
    let wide = finite_f64(text)?;
    let v = wide as f32;
    if v.is_infinite() {
        return Err(format!("{text} is outside the range of a 32-bit float (about ±3.4e38)"));
    }
    if v == 0.0 && wide != 0.0 {
        return Err(format!("{text} rounds to 0 in a 32-bit float (the smallest is about 1.4e-45)"));
    }
    Ok(v)
}

/// A finite f64.
pub fn finite_f64(text: &str) -> Result<f64, String> {
    let v: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number"))?;
    if !v.is_finite() {
        return Err(format!("{text} is not a finite number"));
    }
    Ok(v)
}

/// The narrowest `--box` accepted, times max(1, |LO|, |HI|): below it f32 states, steps and
/// quadrature cells no longer resolve the box, and its log-volume (in every log Z and
/// log-density on it) is set by rounding (a box 1e-30 wide "scores" +118 nats).
pub const MIN_BOX_WIDTH: f64 = 1e-6;

/// `LO,HI` of every `--box` (and `--init box:`): finite, LO below HI, at least
/// [`MIN_BOX_WIDTH`] wide relative to its largest bound.
pub fn parse_box(s: &str) -> Result<(f32, f32), String> {
    let (lo, hi) = s.split_once(',').ok_or("expected LO,HI")?;
    let num = |v: &str| finite_f32(v.trim());
    let (lo, hi) = (num(lo)?, num(hi)?);
    if !(lo < hi) {
        return Err("LO must be below HI".into());
    }
    let width = hi as f64 - lo as f64;
    let floor = MIN_BOX_WIDTH * 1f64.max(lo.abs() as f64).max(hi.abs() as f64);
    if width < floor {
        return Err(format!(
            "the box is {width:.2e} wide, narrower than the floor {floor:.2e} ({MIN_BOX_WIDTH:e} x max(1, |LO|, |HI|)): \
             f32 states and grid cells do not resolve a box that narrow"
        ));
    }
    Ok((lo, hi))
}

/// The library's names for `ebm sample`'s settings, and the flags that set them.
pub const SAMPLE_FLAGS: &[(&str, &str)] = &[
    ("step size", "--step-size"),
    ("noise scale", "--noise-std"),
    ("gradient clamp", "--grad-clamp"),
    ("box clamp", "--box"),
    ("step jitter", "--step-jitter"),
    ("leapfrog steps", "--leapfrog"),
    ("leapfrog jitter", "--leapfrog-jitter"),
    ("target acceptance", "--target-accept"),
    ("temperature ladder", "--temperatures / --max-temperature"),
    ("swap interval", "--swap-every"),
];

/// The settings `TrainConfig::validate` (ebm train) names, and their flags.
pub const TRAIN_FLAGS: &[(&str, &str)] = &[
    ("batch", "--batch"),
    ("learning rate", "--lr"),
    ("alpha", "--alpha"),
    ("weight decay", "--weight-decay"),
    ("clip norm", "--clip-norm"),
    ("langevin steps", "--langevin-steps"),
    ("langevin step size", "--step-size"),
    ("langevin noise scale", "--noise-scale / --noise-std"),
    ("langevin gradient clamp", "--grad-clamp"),
    ("lr gamma per epoch", "--lr-gamma"),
    ("final learning-rate fraction", "--lr-decay-to"),
    ("buffer capacity", "--buffer-size"),
    ("reset probability", "--reset-prob"),
    ("augment", "--augment"),
    ("pairs", "--pairs"),
    ("loss infonce", "--loss infonce"),
    ("generator", "--generator"),
    ("generator learning rate", "--generator-lr"),
    ("latent", "--latent"),
    ("encoder", "--encoder"),
    ("encoder learning rate", "--encoder-lr"),
];

/// The settings the RBM `TrainConfig::validate` (ebm rbm train) names, and their flags.
pub const RBM_TRAIN_FLAGS: &[(&str, &str)] = &[
    ("Gibbs steps", "--cd / --pcd"),
    ("batch size", "--batch"),
    ("learning rate", "--lr"),
    ("momentum", "--momentum"),
    ("weight decay", "--weight-decay"),
    ("lr schedule", "--lr-schedule"),
];

/// Renames the setting an invalid-input error names to the flag that sets it, so the message
/// says what the user typed.
pub fn with_flag_names(e: crate::Error, names: &[(&str, &str)]) -> crate::Error {
    match e {
        crate::Error::InvalidInput { what, message } => {
            let what = names.iter().find(|(n, _)| *n == what).map_or(what, |(_, flag)| flag.to_string());
            crate::Error::InvalidInput { what, message }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_and_lost_values_are_refused_with_the_text() {
        assert_eq!(finite_f32("0.25"), Ok(0.25));
        assert_eq!(finite_f32("-0"), Ok(0.0));
        for bad in ["nan", "NaN", "inf", "-inf", "1e39", "-1e308", "1e-50", "x"] {
            let e = finite_f32(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert!(finite_f64("1e308").is_ok() && finite_f64("nan").is_err());
    }
}
