//! Evaluation: chain diagnostics (ESS, R-hat), out-of-distribution detection scores and
//! classifier quality.

pub mod classify;
pub mod diagnostics;
pub mod ood;
