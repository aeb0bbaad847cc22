//! Constants of the looplm law's conditioning that its backends share.

/// Box for the exponents alpha, beta, gamma.
pub const EXPONENT_BOUNDS: (f64, f64) = (1e-4, 8.0);

/// Reference point of each term, in internal units: (N_ref, D_ref, T_ref).
pub type Reference = [f64; 3];
