//! What a request gets back: the [`Reply`] built before anything is
//! written, the [`Outcome`] it is counted as, and the guard that turns a
//! handler's panic into a 500.

use std::panic::{AssertUnwindSafe, catch_unwind};

pub(super) const TEXT: &str = "text/plain; charset=utf-8";
pub(super) const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a request is counted as in `smo_webhook_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Accepted,
    Unauthorized,
    TooLarge,
    BadRequest,
    Unavailable,
    MethodNotAllowed,
    NotFound,
    InternalError,
}

impl Outcome {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Unauthorized => "unauthorized",
            Outcome::TooLarge => "too_large",
            Outcome::BadRequest => "bad_request",
            Outcome::Unavailable => "unavailable",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::NotFound => "not_found",
            Outcome::InternalError => "internal_error",
        }
    }
}

/// A response, built before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

impl Reply {
    pub(super) fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: TEXT,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub(super) fn header(mut self, name: &'static str, value: &'static str) -> Reply {
        self.headers.push((name, value));
        self
    }

    pub(super) fn into_response(self) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
        let mut response =
            tiny_http::Response::from_string(self.body).with_status_code(self.status);
        let headers = std::iter::once(("Content-Type", self.content_type)).chain(self.headers);
        for (name, value) in headers {
            // Names and values are ASCII constants of this module.
            if let Ok(header) = tiny_http::Header::from_bytes(name, value) {
                response.add_header(header);
            }
        }
        response
    }
}

/// Runs `handle`, turning a panic into a 500.
pub(super) fn guarded(
    handle: impl FnOnce() -> (Reply, Option<Outcome>),
) -> (Reply, Option<Outcome>) {
    catch_unwind(AssertUnwindSafe(handle)).unwrap_or_else(|_| {
        tracing::error!("http handler panicked");
        (
            Reply::text(500, "internal error\n"),
            Some(Outcome::InternalError),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_handler_answers_500() {
        let (reply, outcome) = guarded(|| panic!("handler bug"));
        assert_eq!(reply.status, 500);
        assert_eq!(outcome, Some(Outcome::InternalError));
    }
}
