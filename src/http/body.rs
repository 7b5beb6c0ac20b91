//! Reading a request body within the configured limit.

use std::io::Read;

pub(super) enum BodyError {
    TooLarge,
    Read(std::io::Error),
}

/// Reads at most `max` bytes; a declared length over it is refused
/// without reading anything.
pub(super) fn read_body(
    request: &mut tiny_http::Request,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    if request.body_length().is_some_and(|len| len > max) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(request.body_length().unwrap_or(0));
    // One byte more than allowed tells "exactly max" from "too large" for
    // bodies of unknown length (chunked).
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    request
        .as_reader()
        .take(limit)
        .read_to_end(&mut body)
        .map_err(BodyError::Read)?;
    if body.len() > max {
        return Err(BodyError::TooLarge);
    }
    Ok(body)
}
