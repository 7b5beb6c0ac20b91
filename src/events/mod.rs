//! Events out: every journal entry is published as a CloudEvent 1.0
//! (structured JSON) to the sinks of `config.yaml`'s `events` block.
//!
//! The guarantee is the store's: an entry enters the outbox in the
//! transaction that records the change it describes
//! ([`crate::store::outbox`]), and a sender per sink delivers the outbox
//! after the commit, in sequence order, at least once — a crash between
//! commit and delivery, or a receiver down for an hour, re-sends the same
//! event with the same `id` later. Per sink:
//!
//! - [`cloud`] builds the event from the journal entry (pure);
//! - [`sink`] delivers one event and classifies the answer: 2xx
//!   delivered; 408, 429, 5xx, timeouts and connection errors retried;
//!   any other 4xx refused for good (dropped with a warning, as
//!   Alertmanager treats its receivers);
//! - [`sender`] walks the outbox from the sink's cursor, retrying with
//!   exponential back-off and jitter, and advances the cursor durably.
//!
//! Secrets (tokens, HMAC keys) are read from their files at each delivery
//! and never logged; events carry what the journal carries, which never
//! holds a secret.

pub mod cloud;
pub mod sender;
pub mod sink;

pub use cloud::{CONTENT_TYPE, CloudEvent};
pub use sender::{Sender, run_senders};
pub use sink::{Deliver, Delivery};
