use std::{borrow::Cow, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use socketioxide_core::{
    Value,
    parser::{Parse, ParserError},
};
use socketioxide_nats_protocol::subjects::DEFAULT_PREFIX;

#[cfg(not(any(feature = "common-parser", feature = "msgpack-parser")))]
compile_error!(
    "enable the `common-parser` or the `msgpack-parser` feature of socketioxide-nats-emitter"
);

/// The socket.io parser the servers use: events must be encoded the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Parser {
    /// The default socket.io parser (JSON with binary attachments).
    #[cfg(feature = "common-parser")]
    Common,
    /// The msgpack parser (`ParserConfig::msgpack()` on the servers).
    #[cfg(feature = "msgpack-parser")]
    MsgPack,
}

impl Default for Parser {
    fn default() -> Self {
        #[cfg(feature = "common-parser")]
        return Parser::Common;
        #[cfg(all(not(feature = "common-parser"), feature = "msgpack-parser"))]
        return Parser::MsgPack;
    }
}

impl Parser {
    pub(crate) fn encode<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<Value, ParserError> {
        match self {
            #[cfg(feature = "common-parser")]
            Parser::Common => {
                socketioxide_parser_common::CommonParser.encode_value(data, Some(event))
            }
            #[cfg(feature = "msgpack-parser")]
            Parser::MsgPack => {
                socketioxide_parser_msgpack::MsgPackParser.encode_value(data, Some(event))
            }
        }
    }

    pub(crate) fn decode<T: DeserializeOwned>(self, value: &mut Value) -> Result<T, ParserError> {
        match self {
            #[cfg(feature = "common-parser")]
            Parser::Common => socketioxide_parser_common::CommonParser.decode_value(value, false),
            #[cfg(feature = "msgpack-parser")]
            Parser::MsgPack => {
                socketioxide_parser_msgpack::MsgPackParser.decode_value(value, false)
            }
        }
    }
}

/// How the [`Emitter`](crate::Emitter) talks to the cluster.
///
/// ```
/// use std::time::Duration;
/// use socketioxide_nats_emitter::EmitterConfig;
/// let config = EmitterConfig::new()
///     .with_prefix("chat-app")
///     .with_request_timeout(Duration::from_secs(2));
/// assert_eq!(config.prefix, "chat-app");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmitterConfig {
    /// The subject prefix of the servers' adapter. Default is `"socket.io"`.
    pub prefix: Cow<'static, str>,
    /// How long a request (fetch sockets, rooms, server count, the ack counts of an
    /// `emit_with_ack`) waits for the servers. Default is 5 seconds.
    pub request_timeout: Duration,
    /// How long clients have to acknowledge an `emit_with_ack`. Default is 5 seconds.
    pub ack_timeout: Duration,
    /// The socket.io parser of the servers. Default is the common parser.
    pub parser: Parser,
    /// How long a server has to answer a liveness probe. Default is 500 ms.
    ///
    /// A request still waiting for a server 50 ms after it started asks that
    /// server directly, on its own subject, whether it is alive (again every
    /// 200 ms while it stays silent). NATS answers at once when nobody listens
    /// there any more (the server crashed): the request stops waiting for it.
    /// When something else listens there too (a monitor subscribed to
    /// `{prefix}.>`, a JetStream stream), only the server's own answer can tell,
    /// and a server that does not answer within this time is taken as gone.
    /// Raise it for servers that can be busy for longer; keep it the same as the
    /// servers' own `probe_timeout`.
    pub probe_timeout: Duration,
}

impl Default for EmitterConfig {
    fn default() -> Self {
        Self {
            prefix: Cow::Borrowed(DEFAULT_PREFIX),
            request_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(5),
            parser: Parser::default(),
            probe_timeout: Duration::from_millis(500),
        }
    }
}

impl EmitterConfig {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the subject prefix. Default is `"socket.io"`.
    pub fn with_prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Set the request timeout. Default is 5 seconds.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Set the default ack timeout. Default is 5 seconds.
    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }
    /// Set how long a server has to answer a liveness probe. Default is 500 ms.
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }
    /// Set the socket.io parser of the servers. Default is the common parser.
    pub fn with_parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }
}
