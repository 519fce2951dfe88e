//! Credentials made at test time: TLS certificates (with the `openssl` command)
//! and NATS decentralized-auth JWTs and credentials files (signed with nkeys).
//! Nothing secret is ever committed; every key lives in a temporary directory.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use nkeys::KeyPair;
use serde_json::json;

/// A temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under the system's temporary directory.
    pub fn new(tag: &str) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nats-harness-{}-{}-{tag}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("cannot create a temporary directory");
        Self(dir)
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A private certificate authority with a server certificate for `127.0.0.1` /
/// `localhost` and a client certificate, as PEM files.
#[derive(Debug)]
pub struct Pki {
    dir: TempDir,
}

impl Pki {
    /// Generate the CA and both certificates (EC P-256 keys, valid one day).
    ///
    /// Panics with install instructions if `openssl` is missing.
    pub fn generate() -> Self {
        let pki = Self {
            dir: TempDir::new("pki"),
        };
        let d = pki.dir.path();
        fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .expect("cannot write server.ext");
        fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n")
            .expect("cannot write client.ext");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            d,
            &[
                &["req", "-x509"],
                &ec[..],
                &[
                    "-keyout",
                    "ca-key.pem",
                    "-out",
                    "ca.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=nats-harness test CA",
                ],
            ]
            .concat(),
        );
        for name in ["server", "client"] {
            let (key, csr, pem, ext) = (
                format!("{name}-key.pem"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            let subj = format!("/CN=nats-harness {name}");
            openssl(
                d,
                &[
                    &["req"],
                    &ec[..],
                    &["-keyout", &key, "-out", &csr, "-subj", &subj],
                ]
                .concat(),
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca-key.pem",
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    "1",
                    "-extfile",
                    &ext,
                ],
            );
        }
        pki
    }

    /// A file of the PKI: `ca.pem`, `server.pem`, `server-key.pem`, `client.pem`,
    /// `client-key.pem`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A nats-server `tls {}` block serving the server certificate; with
    /// `verify_clients`, clients must present a certificate signed by the CA.
    pub fn server_config(&self, verify_clients: bool) -> String {
        let mut block = format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  timeout: 2\n",
            self.file("server.pem"),
            self.file("server-key.pem")
        );
        if verify_clients {
            block.push_str(&format!(
                "  ca_file: {:?}\n  verify: true\n",
                self.file("ca.pem")
            ));
        }
        block.push_str("}\n");
        block
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `openssl` ({e}): install it with `apt-get install openssl`")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// NATS decentralized authentication (operator mode): an operator, one account,
/// and users of that account with credentials files, all signed here.
#[derive(Debug)]
pub struct Operator {
    account: KeyPair,
    operator_jwt: String,
    account_jwt: String,
    dir: TempDir,
}

impl Operator {
    /// A new operator and account.
    pub fn new() -> Self {
        let operator = KeyPair::new_operator();
        let account = KeyPair::new_account();
        let operator_jwt = sign(
            &operator,
            &operator.public_key(),
            "test-operator",
            json!({ "type": "operator", "version": 2 }),
        );
        let account_jwt = sign(
            &operator,
            &account.public_key(),
            "test-account",
            json!({
                "limits": { "subs": -1, "data": -1, "payload": -1, "imports": -1,
                            "exports": -1, "wildcards": true, "conn": -1, "leaf": -1 },
                "default_permissions": { "pub": {}, "sub": {} },
                "type": "account", "version": 2
            }),
        );
        Self {
            account,
            operator_jwt,
            account_jwt,
            dir: TempDir::new("operator"),
        }
    }

    /// The nats-server configuration trusting this operator, with the account
    /// preloaded in a memory resolver.
    pub fn server_config(&self) -> String {
        format!(
            "operator: {:?}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {:?}\n}}\n",
            self.operator_jwt,
            self.account.public_key(),
            self.account_jwt
        )
    }

    /// Write a credentials file (user JWT + seed) for a new user of the account
    /// and return its path. `allow` restricts the user to publish and subscribe
    /// on those subjects; empty means everything.
    pub fn user_creds(&self, name: &str, allow: &[&str]) -> PathBuf {
        let user = KeyPair::new_user();
        let perms = if allow.is_empty() {
            json!({})
        } else {
            json!({ "allow": allow })
        };
        let jwt = sign(
            &self.account,
            &user.public_key(),
            name,
            json!({ "pub": perms, "sub": perms, "subs": -1, "data": -1, "payload": -1,
                    "type": "user", "version": 2 }),
        );
        let seed = user.seed().expect("a generated user key has a seed");
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        );
        let path = self.dir.path().join(format!("{name}.creds"));
        fs::write(&path, creds).expect("cannot write the credentials file");
        path
    }
}

impl Default for Operator {
    fn default() -> Self {
        Self::new()
    }
}

/// A NATS JWT: `base64url(header).base64url(claims).base64url(signature)`, signed
/// by `issuer` with ed25519.
fn sign(issuer: &KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = json!({
        "jti": format!("{subject}{iat}"),
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let sig = issuer
        .sign(signed.as_bytes())
        .expect("signing with a generated key");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// A new nkey user: `(public key, seed)`, for an `authorization { users: [{ nkey }] }`
/// server configuration.
pub fn nkey_user() -> (String, String) {
    let user = KeyPair::new_user();
    let seed = user.seed().expect("a generated user key has a seed");
    (user.public_key(), seed)
}
