//! Wall-clock time as the store records it (unix seconds). One helper
//! below every layer, so that nothing climbs up to borrow another's.

/// Unix seconds now (0 if the clock is before 1970).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
