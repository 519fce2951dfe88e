use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Operate a socketioxide-nats cluster: emit to sockets, list rooms, sockets and
/// servers, make sockets join, leave or disconnect, and watch the traffic.
///
/// Connection flags follow the NATS CLI (`-s`, `--user`, `--password`,
/// `--token`, `--creds`, `--nkey`, `--tlscert`, `--tlskey`, `--tlsca`).
#[derive(Debug, Parser)]
#[command(name = "sionats", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) conn: Connection,

    /// The subject prefix of the servers' adapter.
    #[arg(
        long,
        global = true,
        env = "SIONATS_PREFIX",
        default_value = "socket.io"
    )]
    pub(crate) prefix: String,

    /// The socket.io namespace.
    #[arg(short = 'n', long, global = true, default_value = "/")]
    pub(crate) ns: String,

    /// How long to wait for the servers, in seconds.
    #[arg(long, global = true, default_value = "5", value_parser = seconds)]
    pub(crate) timeout: Duration,

    /// The servers' socket.io parser.
    #[arg(long, global = true, value_enum, default_value = "common")]
    pub(crate) parser: ParserArg,

    #[command(subcommand)]
    pub(crate) command: Command,
}

fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err("must be a positive number of seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ParserArg {
    /// socket.io's default parser.
    Common,
    /// socket.io's msgpack parser.
    Msgpack,
}

/// How to reach NATS.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// NATS server URLs, comma-separated.
    #[arg(
        short = 's',
        long,
        global = true,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub(crate) server: String,
    /// User name.
    #[arg(long, global = true, env = "NATS_USER")]
    pub(crate) user: Option<String>,
    /// Password.
    #[arg(long, global = true, env = "NATS_PASSWORD")]
    pub(crate) password: Option<String>,
    /// Authentication token.
    #[arg(long, global = true, env = "NATS_TOKEN")]
    pub(crate) token: Option<String>,
    /// Credentials file (JWT and NKey seed).
    #[arg(long, global = true, env = "NATS_CREDS")]
    pub(crate) creds: Option<PathBuf>,
    /// File holding an NKey seed.
    #[arg(long, global = true, env = "NATS_NKEY")]
    pub(crate) nkey: Option<PathBuf>,
    /// Client certificate for mutual TLS.
    #[arg(long, global = true, env = "NATS_CERT", requires = "tlskey")]
    pub(crate) tlscert: Option<PathBuf>,
    /// Client key for mutual TLS.
    #[arg(long, global = true, env = "NATS_KEY", requires = "tlscert")]
    pub(crate) tlskey: Option<PathBuf>,
    /// CA certificate to verify the server.
    #[arg(long, global = true, env = "NATS_CA")]
    pub(crate) tlsca: Option<PathBuf>,
}

/// Which sockets an operation applies to.
#[derive(Debug, Args)]
pub(crate) struct Selection {
    /// Only the sockets in this room or with this id (repeat for several).
    // Socket ids are url-safe base64 and may start with '-'.
    #[arg(long = "to", value_name = "ROOM_OR_ID", allow_hyphen_values = true)]
    pub(crate) to: Vec<String>,
    /// Not the sockets in this room or with this id (repeat for several).
    #[arg(long = "except", value_name = "ROOM_OR_ID", allow_hyphen_values = true)]
    pub(crate) except: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Emit an event to sockets; each DATA is one JSON argument.
    Emit {
        /// The event name.
        event: String,
        /// Event arguments, as JSON (a bare word is taken as a string).
        data: Vec<String>,
        #[command(flatten)]
        select: Selection,
        /// May be dropped for clients that are not ready.
        #[arg(long)]
        volatile: bool,
        /// Wait for the clients' acks and print them, one line per socket.
        #[arg(long)]
        ack: bool,
    },
    /// List the rooms (of the selected sockets).
    Rooms {
        #[command(flatten)]
        select: Selection,
    },
    /// List sockets, with the server holding each.
    Sockets {
        #[command(flatten)]
        select: Selection,
    },
    /// List the live servers of the namespace.
    Nodes,
    /// Make the selected sockets join rooms.
    Join {
        /// The rooms to join.
        #[arg(required = true)]
        rooms: Vec<String>,
        #[command(flatten)]
        select: Selection,
    },
    /// Make the selected sockets leave rooms.
    Leave {
        /// The rooms to leave.
        #[arg(required = true)]
        rooms: Vec<String>,
        #[command(flatten)]
        select: Selection,
    },
    /// Disconnect the selected sockets (all of the namespace without --to).
    Disconnect {
        #[command(flatten)]
        select: Selection,
    },
    /// Send a server-side event to every server's handlers.
    ServerEmit {
        /// The event name.
        event: String,
        /// The event data, as JSON.
        data: Option<String>,
    },
    /// Print the adapter's traffic under the prefix, decoded, until Ctrl-C.
    ///
    /// Shows what goes to every server (`{prefix}.{ns}.b.*`: emits, requests,
    /// hellos, heartbeats, goodbyes) and every answer (`{prefix}.{ns}.r.*.*`).
    ///
    /// It does not watch the servers' own subjects (`{prefix}.{ns}.n.*.*`), so
    /// requests to a single server (remote socket operations, liveness probes)
    /// are not shown, though the answers to them are.
    /// This is on purpose: NATS answers "no responders" at once to a request on a
    /// subject nobody subscribes to, which is how servers and emitters learn
    /// that a crashed server is gone. A watcher subscribed there would take that
    /// answer away, and every request would wait for a probe timeout instead.
    Watch {
        /// Every namespace, not only --ns.
        #[arg(long)]
        all: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn socket_ids_starting_with_a_hyphen_are_values() {
        let cli = Cli::try_parse_from([
            "sionats",
            "join",
            "vip",
            "--to",
            "-eAAAAAAAAAAAAAA",
            "--except",
            "-xBBBBBBBBBBBBBB",
        ])
        .expect("ids starting with '-' parse as values");
        match cli.command {
            Command::Join { select, .. } => {
                assert_eq!(select.to, ["-eAAAAAAAAAAAAAA"]);
                assert_eq!(select.except, ["-xBBBBBBBBBBBBBB"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
