//! Evaluation: chain diagnostics (ESS, R-hat) and out-of-distribution detection scores.

pub mod diagnostics;
pub mod ood;
