//! `sionats`: operate a socketioxide-nats cluster from the command line.
//!
//! ```text
//! sionats -s nats://127.0.0.1:4222 emit news '"hello"' --to room1
//! sionats --ns /chat rooms
//! sionats sockets --to room1
//! sionats nodes
//! sionats join vip --to <socket id>
//! sionats watch --all
//! ```
//!
//! Exits with status 1 and a one-line message on stderr when NATS is
//! unreachable, no server answers, or a request times out.

mod args;
mod watch;

use std::process::ExitCode;

use clap::Parser as _;
use serde::{Serialize, ser::SerializeTuple};
use socketioxide_nats_emitter::{Emitter, EmitterConfig, Operators, Parser, async_nats};
use socketioxide_nats_protocol::subjects::validate_prefix;

use args::{Cli, Command, Connection, ParserArg, Selection};

/// Event arguments: several JSON values, sent as separate socket.io arguments.
struct EventArgs(Vec<serde_json::Value>);

impl Serialize for EventArgs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A tuple, not a sequence: socket.io parsers spread tuples into arguments.
        let mut t = s.serialize_tuple(self.0.len())?;
        for v in &self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

/// JSON, or a bare word taken as a string (`hello` is `"hello"`).
fn json_arg(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::String(s.to_owned()))
}

async fn connect(
    c: &Connection,
    timeout: std::time::Duration,
) -> Result<async_nats::Client, String> {
    let mut opts = async_nats::ConnectOptions::new()
        .name("sionats")
        .connection_timeout(timeout);
    if let (Some(user), Some(pass)) = (&c.user, &c.password) {
        opts = opts.user_and_password(user.clone(), pass.clone());
    }
    if let Some(token) = &c.token {
        opts = opts.token(token.clone());
    }
    if let Some(path) = &c.nkey {
        let seed = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the nkey seed {}: {e}", path.display()))?;
        opts = opts.nkey(seed.trim().to_owned());
    }
    if let Some(path) = &c.creds {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| format!("cannot read the credentials file {}: {e}", path.display()))?;
    }
    if let Some(ca) = &c.tlsca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&c.tlscert, &c.tlskey) {
        opts = opts
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    let urls: Vec<String> = c.server.split(',').map(|s| s.trim().to_owned()).collect();
    opts.connect(urls)
        .await
        .map_err(|e| format!("cannot connect to NATS at {}: {e}", c.server))
}

fn select(mut ops: Operators, s: &Selection) -> Operators {
    if !s.to.is_empty() {
        ops = ops.to(s.to.clone());
    }
    if !s.except.is_empty() {
        ops = ops.except(s.except.clone());
    }
    ops
}

async fn run(cli: Cli) -> Result<(), String> {
    validate_prefix(&cli.prefix).map_err(|e| e.to_string())?;
    let client = connect(&cli.conn, cli.timeout).await?;
    let parser = match cli.parser {
        ParserArg::Common => Parser::Common,
        ParserArg::Msgpack => Parser::MsgPack,
    };
    let config = EmitterConfig::new()
        .with_prefix(cli.prefix.clone())
        .with_request_timeout(cli.timeout)
        .with_ack_timeout(cli.timeout)
        .with_parser(parser);
    let emitter = Emitter::with_config(client.clone(), config).map_err(|e| e.to_string())?;
    let ns = emitter.of(&cli.ns);
    let e = |e: socketioxide_nats_emitter::EmitError| e.to_string();
    match cli.command {
        Command::Emit {
            event,
            data,
            select: s,
            volatile,
            ack,
        } => {
            let args = EventArgs(data.iter().map(|d| json_arg(d)).collect());
            let mut ops = select(ns, &s);
            if volatile {
                ops = ops.volatile();
            }
            if ack {
                let acks = ops
                    .emit_with_ack::<_, serde_json::Value>(&event, &args)
                    .await
                    .map_err(e)?;
                for (sid, res) in &acks {
                    match res {
                        Ok(v) => println!("{sid}\t{v}"),
                        Err(err) => println!("{sid}\terror: {err}"),
                    }
                }
                eprintln!("{} acks", acks.len());
            } else {
                ops.emit(&event, &args).await.map_err(e)?;
            }
        }
        Command::Rooms { select: s } => {
            for room in select(ns, &s).rooms().await.map_err(e)? {
                println!("{room}");
            }
        }
        Command::Sockets { select: s } => {
            let mut sockets = select(ns, &s).fetch_sockets().await.map_err(e)?;
            sockets.sort_by(|a, b| {
                (a.server_id.as_str(), a.id.as_str()).cmp(&(b.server_id.as_str(), b.id.as_str()))
            });
            for sock in &sockets {
                println!("{}\t{}", sock.id, sock.server_id);
            }
            eprintln!("{} sockets", sockets.len());
        }
        Command::Nodes => {
            let mut nodes: Vec<String> = ns
                .nodes()
                .await
                .map_err(e)?
                .iter()
                .map(ToString::to_string)
                .collect();
            nodes.sort();
            for n in &nodes {
                println!("{n}");
            }
            eprintln!("{} servers", nodes.len());
        }
        Command::Join { rooms, select: s } => select(ns, &s).join(rooms).await.map_err(e)?,
        Command::Leave { rooms, select: s } => select(ns, &s).leave(rooms).await.map_err(e)?,
        Command::Disconnect { select: s } => select(ns, &s).disconnect().await.map_err(e)?,
        Command::ServerEmit { event, data } => {
            let data = data
                .as_deref()
                .map(json_arg)
                .unwrap_or(serde_json::Value::Null);
            ns.server_emit(&event, &data).await.map_err(e)?;
        }
        Command::Watch { all } => {
            let ns = (!all).then(|| emitter_ns(&cli.ns));
            let subjects = watch::subjects(&cli.prefix, ns.as_deref())?;
            return watch::run(&client, &cli.prefix, &subjects).await;
        }
    }
    emitter.flush().await.map_err(e)
}

fn emitter_ns(ns: &str) -> String {
    if ns.starts_with('/') {
        ns.to_owned()
    } else {
        format!("/{ns}")
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("sionats: {msg}");
            ExitCode::FAILURE
        }
    }
}
