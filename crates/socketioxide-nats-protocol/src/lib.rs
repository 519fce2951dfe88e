#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
//! The wire protocol of [socketioxide-nats](https://docs.rs/socketioxide-nats): the NATS
//! subjects it uses and the MessagePack encoding of the messages nodes exchange.
//!
//! The adapter, the emitter and the command-line tool all speak it through this
//! crate, so they cannot drift apart. Applications normally do not depend on it
//! directly.
//!
//! * [`subjects`]: the subject layout and the encoding of namespace names into
//!   single, wildcard-free tokens;
//! * [`message`]: requests and responses, and their encoding;
//! * [`completion`]: when a request is complete (which node still owes what);
//! * `publish` (feature `nats`): publishing over async-nats within a time bound.
//!
//! Binary payloads are written as MessagePack `bin`, so a binary event costs its
//! own size plus a few bytes of framing; decoding slices the received buffer
//! instead of copying payloads.

pub mod completion;
mod error;
pub mod message;
mod msgpack;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod publish;
pub mod subjects;

pub use error::ProtocolError;
pub use message::VERSION;
