//! Evaluation: chain diagnostics (ESS, R-hat), out-of-distribution detection scores,
//! classifier quality, and energy minimisation (inference as finding low-energy states).

pub mod classify;
pub mod contrastive;
pub mod diagnostics;
pub mod minimize;
pub mod ood;
pub mod quality;
