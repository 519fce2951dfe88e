#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)
)]
//! # Emit into a socketioxide-nats cluster from any process
//!
//! Workers, jobs and services that are not socket.io servers can reach the
//! clients of a [socketioxide-nats](https://docs.rs/socketioxide-nats) cluster:
//! emit events (rooms, exceptions, volatile, binary), make sockets join or leave
//! rooms or disconnect them, and, which the Node.js emitters cannot, collect
//! client acks from every server, fetch sockets, list rooms and count servers.
//!
//! It depends on NATS and the protocol only: no HTTP stack, no socket.io server.
//! The emitter is never counted as a server.
//!
//! ```no_run
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use socketioxide_nats_emitter::{Emitter, EmitterConfig, async_nats};
//!
//! let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let emitter = Emitter::with_config(client, EmitterConfig::new().with_prefix("socket.io"))?;
//!
//! // to rooms or socket ids, except others, volatile or not
//! emitter.of("chat").to(["room1", "room2"]).except("banned").emit("news", &("a", 1)).await?;
//! emitter.of("/chat").volatile().emit("position", &[1.5, 2.0]).await?;
//!
//! // acks of every client of every server
//! let acks = emitter
//!     .of("/chat")
//!     .timeout(Duration::from_secs(2))
//!     .emit_with_ack::<_, String>("question", &"ready?")
//!     .await?;
//! for (sid, answer) in acks {
//!     println!("{sid}: {answer:?}");
//! }
//!
//! // cluster operations
//! emitter.of("/chat").to("room1").join("vip").await?;
//! let rooms = emitter.of("/chat").rooms().await?;
//! let sockets = emitter.of("/chat").to("vip").fetch_sockets().await?;
//! emitter.of("/chat").to("banned").disconnect().await?;
//!
//! // before a short-lived process exits: make sure the last messages left
//! emitter.flush().await?;
//! # Ok(()) }
//! ```
//!
//! # Which servers a request waits for
//!
//! The emitter does not follow heartbeats. Each request (fetch sockets, rooms,
//! acks, server count) goes out with a `Discover`, which every server answers
//! with the other servers it knows; the request waits for each of them and ends
//! as soon as all have answered. A server that crashed is still named by the
//! others until their heartbeat timeout, so a server that has sent nothing
//! 50 ms into the request is probed on its own subject: NATS says at once when
//! nobody listens there any more, and a server that does not answer the probe
//! within [`EmitterConfig::probe_timeout`] is taken as gone too. A crashed
//! server therefore costs a request about 50 ms (or the probe timeout when a
//! monitor listens to the whole prefix), not its timeout.
//!
//! A server that answers probes but not the request makes fetch sockets, rooms
//! and acks fail at the timeout with [`EmitError::Incomplete`], naming it,
//! rather than return a partial answer as if it were complete.
//!
//! The servers' socket.io parser must be chosen here too
//! ([`EmitterConfig::with_parser`]; the `msgpack-parser` feature adds
//! [`Parser::MsgPack`]), as must their subject prefix.

mod config;
mod emitter;
mod error;
mod request;

pub use async_nats;
pub use config::{EmitterConfig, Parser};
pub use emitter::{Emitter, Operators, SocketInfo};
pub use error::{AckError, EmitError};
pub use socketioxide_core::{Sid, Uid};
