//! `smo bench`.
