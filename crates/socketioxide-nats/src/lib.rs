#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)
)]
//! # A NATS adapter for socketioxide
//!
//! wip

mod ack;
mod adapter;
mod config;
mod error;
mod handle;
mod heartbeat;
mod nodes;
mod recv;
mod requests;

pub use ack::AckStream;
pub use adapter::{InitRes, NatsAdapter, NatsAdapterCtr};
pub use async_nats;
pub use config::NatsAdapterConfig;
pub use error::Error;
pub use handle::NatsHandle;
