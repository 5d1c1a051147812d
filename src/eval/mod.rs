//! Evaluation: chain diagnostics (ESS, R-hat).

pub mod diagnostics;
