//! TPM 2.0 quotes: the structures shared with the Azure vTPM verifier.

pub mod structures;
