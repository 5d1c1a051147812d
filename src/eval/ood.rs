//! Out-of-distribution detection from per-input scores (higher = more unusual, e.g. an
//! energy): the rank statistics the literature reports, computed exactly (ties counted as
//! half), and an input-complexity correction.
//!
//! Conventions: the OOD inputs are the positive class. AUROC = P(score(out) > score(in)) +
//! P(equal) / 2. AUPR = average precision of ranking by descending score (tied scores enter
//! together). FPR at 95 % TPR = the fraction of OOD inputs accepted as in-distribution when the
//! threshold accepts 95 % of the in-distribution inputs (score <= the 95th percentile).

use crate::{Error, Result};

/// Scores must be finite and both sets non-empty.
fn check(in_scores: &[f32], out_scores: &[f32]) -> Result<()> {
    for (what, s) in [("in-distribution scores", in_scores), ("OOD scores", out_scores)] {
        if s.is_empty() {
            return Err(Error::invalid(what, "no scores"));
        }
        if let Some(i) = s.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(what, format!("score {i} is not finite ({})", s[i])));
        }
    }
    Ok(())
}

/// P(out > in) + P(out = in) / 2 (the Mann-Whitney statistic), by one sort.
pub fn auroc(in_scores: &[f32], out_scores: &[f32]) -> Result<f64> {
    check(in_scores, out_scores)?;
    let mut all: Vec<(f32, bool)> =
        in_scores.iter().map(|&s| (s, false)).chain(out_scores.iter().map(|&s| (s, true))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the OOD inputs' mid-ranks (1-based).
    let (mut rank_sum, mut i) = (0.0f64, 0);
    while i < all.len() {
        let j = i + all[i..].iter().take_while(|v| v.0 == all[i].0).count();
        let mid = (i + 1 + j) as f64 / 2.0;
        rank_sum += mid * all[i..j].iter().filter(|v| v.1).count() as f64;
        i = j;
    }
    let (n_in, n_out) = (in_scores.len() as f64, out_scores.len() as f64);
    Ok((rank_sum - n_out * (n_out + 1.0) / 2.0) / (n_in * n_out))
}

/// Average precision with the OOD inputs positive, ranked by descending score; a group of tied
/// scores is taken at once (its precision counts for each of its positives).
pub fn aupr(in_scores: &[f32], out_scores: &[f32]) -> Result<f64> {
    check(in_scores, out_scores)?;
    let mut all: Vec<(f32, bool)> =
        in_scores.iter().map(|&s| (s, false)).chain(out_scores.iter().map(|&s| (s, true))).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut seen, mut hits, mut ap, mut i) = (0usize, 0usize, 0.0f64, 0);
    while i < all.len() {
        let j = i + all[i..].iter().take_while(|v| v.0 == all[i].0).count();
        let positives = all[i..j].iter().filter(|v| v.1).count();
        seen += j - i;
        hits += positives;
        ap += positives as f64 * hits as f64 / seen as f64;
        i = j;
    }
    Ok(ap / out_scores.len() as f64)
}

/// The `p`-th percentile (0..=100) of `scores`, by linear interpolation between order
/// statistics (numpy's default).
pub fn percentile(scores: &[f32], p: f64) -> Result<f32> {
    if scores.is_empty() || !(0.0..=100.0).contains(&p) {
        return Err(Error::invalid(
            "percentile",
            format!("needs scores and p in [0, 100], got {} scores, p {p}", scores.len()),
        ));
    }
    let mut s = scores.to_vec();
    s.sort_by(f32::total_cmp);
    let at = p / 100.0 * (s.len() - 1) as f64;
    let (lo, frac) = (at.floor() as usize, at - at.floor());
    let hi = (lo + 1).min(s.len() - 1);
    Ok((s[lo] as f64 + frac * (s[hi] as f64 - s[lo] as f64)) as f32)
}

/// The fraction of OOD inputs scored at or below the threshold that accepts `tpr` (e.g. 0.95)
/// of the in-distribution inputs.
pub fn fpr_at_tpr(in_scores: &[f32], out_scores: &[f32], tpr: f64) -> Result<f64> {
    check(in_scores, out_scores)?;
    let threshold = percentile(in_scores, 100.0 * tpr)?;
    Ok(out_scores.iter().filter(|&&s| s <= threshold).count() as f64 / out_scores.len() as f64)
}

/// Input complexity (Serra et al. 2020): the length in bits of the image as an 8-bit greyscale
/// PNG at the best compression, pixels mapped from [lo, hi] to 0..=255.
pub fn png_bits(image: &[f32], height: usize, width: usize, lo: f32, hi: f32) -> Result<f64> {
    use image::ImageEncoder;
    if image.len() != height * width || height == 0 {
        return Err(Error::invalid("image", format!("{} values are not a {height}x{width} image", image.len())));
    }
    let bytes: Vec<u8> =
        image.iter().map(|&v| (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0).round() as u8).collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(&bytes, width as u32, height as u32, image::ExtendedColorType::L8)
    .map_err(|e| Error::invalid("image", format!("PNG encoding failed: {e}")))?;
    Ok(8.0 * out.len() as f64)
}
