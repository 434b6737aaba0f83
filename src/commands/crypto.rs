//! `veritee crypto ...`: operations by key id on keys imported into a node's enclave
//! (flow 3), inside an attested session: the host sees neither data nor results.

use super::secret::{Connection, call_once};
use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome, MAX_DATA_LEN};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;
use veritee_import::keys::{HashAlgorithm, KeyRef};

/// Where the data comes from and the result goes.
#[derive(Debug, Args, Clone)]
pub struct Io {
    /// The input file (default: stdin).
    #[arg(long = "in")]
    input: Option<PathBuf>,
    /// The output file, created (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A key by `PARTITION/KEY-ID`.
pub(super) fn key_ref(s: &str) -> Result<KeyRef, String> {
    let (partition, key_id) = s
        .split_once('/')
        .ok_or_else(|| format!("key {s:?}: write PARTITION/KEY-ID"))?;
    Ok(KeyRef::new(partition, key_id))
}

/// Crypto subcommands.
#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Encrypt under an AES key (AES-256-GCM, bound to the key id and --aad).
    ///
    /// Example: veritee crypto encrypt --node URL --tenant alice.pem --policy p.toml
    ///   --trust-anchor root.pem --key payments/card-key --in card.txt --out card.ct
    Encrypt {
        #[command(flatten)]
        conn: Connection,
        /// The key, PARTITION/KEY-ID.
        #[arg(long, value_parser = key_ref)]
        key: KeyRef,
        /// Associated data the ciphertext is bound to.
        #[arg(long, default_value = "")]
        aad: String,
        #[command(flatten)]
        io: Io,
    },
    /// Decrypt what `encrypt` made; with an RSA key, an RSA-OAEP-SHA256 ciphertext
    /// made with its public key (no --aad).
    ///
    /// Example: veritee crypto decrypt ... --key payments/card-key --in card.ct
    Decrypt {
        #[command(flatten)]
        conn: Connection,
        /// The key, PARTITION/KEY-ID.
        #[arg(long, value_parser = key_ref)]
        key: KeyRef,
        /// The associated data it was encrypted with.
        #[arg(long, default_value = "")]
        aad: String,
        #[command(flatten)]
        io: Io,
    },
    /// Re-encrypt a ciphertext from one key to another inside the enclave.
    ///
    /// Example: veritee crypto translate ... --key payments/old --to payments/new
    ///   --in card.ct --out card.new.ct
    Translate {
        #[command(flatten)]
        conn: Connection,
        /// The key it is encrypted under, PARTITION/KEY-ID.
        #[arg(long, value_parser = key_ref)]
        key: KeyRef,
        /// The key to encrypt it under.
        #[arg(long, value_parser = key_ref)]
        to: KeyRef,
        /// Its associated data (kept).
        #[arg(long, default_value = "")]
        aad: String,
        #[command(flatten)]
        io: Io,
    },
    /// Sign with an ECDSA P-256 key (SHA-256, r || s, 64 bytes) or an RSA key
    /// (RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32).
    ///
    /// Example: veritee crypto sign ... --key payments/signer --in order.json --out order.sig
    Sign {
        #[command(flatten)]
        conn: Connection,
        /// The key, PARTITION/KEY-ID.
        #[arg(long, value_parser = key_ref)]
        key: KeyRef,
        #[command(flatten)]
        io: Io,
    },
    /// Verify a signature (ECDSA or RSA key) or a MAC (HMAC key); exits 1 if it does
    /// not.
    ///
    /// Example: veritee crypto verify ... --key payments/signer --in order.json
    ///   --signature order.sig
    Verify {
        #[command(flatten)]
        conn: Connection,
        /// The key, PARTITION/KEY-ID.
        #[arg(long, value_parser = key_ref)]
        key: KeyRef,
        /// The signature or tag file.
        #[arg(long)]
        signature: PathBuf,
        /// The key version that made it (as `sign` reported; default: the newest).
        #[arg(long)]
        key_version: Option<u32>,
        /// The message file (default: stdin).
        #[arg(long = "in")]
        input: Option<PathBuf>,
    },
    /// HMAC-SHA-256 with an HMAC key.
    ///
    /// Example: veritee crypto hmac ... --key payments/mac --in msg --out msg.tag
    Hmac {
        #[command(flatten)]
        conn: Connection,
        /// The key, PARTITION/KEY-ID.
        #[arg(long, value_parser = key_ref)]
        key: KeyRef,
        #[command(flatten)]
        io: Io,
    },
    /// Add a version to a key, made in the enclave: new ciphertexts and signatures use
    /// it, older versions still decrypt and verify down to the minimum. Prints the
    /// version (and a signing key's new public key, PEM).
    ///
    /// Example: veritee crypto rotate ... --key payments/card-key
    Rotate {
        #[command(flatten)]
        conn: Connection,
        /// The key, PARTITION/KEY-ID.
        #[arg(long, value_parser = key_ref)]
        key: KeyRef,
    },
    /// Refuse a key's versions below VERSION from now on (it never goes back down).
    ///
    /// Example: veritee crypto min-version ... --key payments/card-key --version 2
    MinVersion {
        #[command(flatten)]
        conn: Connection,
        /// The key, PARTITION/KEY-ID.
        #[arg(long, value_parser = key_ref)]
        key: KeyRef,
        /// The oldest version still accepted.
        #[arg(long)]
        version: u32,
    },
    /// A digest computed by the enclave (no key): prints it in hex.
    ///
    /// Example: veritee crypto hash ... --algorithm sha256 --in file
    Hash {
        #[command(flatten)]
        conn: Connection,
        /// sha256, sha384 or sha512.
        #[arg(long, default_value = "sha256")]
        algorithm: HashAlgorithm,
        /// The input file (default: stdin).
        #[arg(long = "in")]
        input: Option<PathBuf>,
    },
}

fn read_input(input: &Option<PathBuf>) -> Result<SecretBytes> {
    let mut data = SecretBytes::new(Vec::new());
    match input {
        Some(path) => *data.expose_mut() = crate::files::read(path, "input")?,
        None => {
            std::io::stdin()
                .take(MAX_DATA_LEN as u64 + 1)
                .read_to_end(data.expose_mut())
                .context("cannot read stdin")?;
        }
    }
    if data.len() > MAX_DATA_LEN {
        bail!("the input is over {MAX_DATA_LEN} bytes: one operation takes at most that");
    }
    Ok(data)
}

/// Writes `bytes` to a new file with `mode`, or to stdout.
pub(super) fn write_output(out: &Option<PathBuf>, bytes: &[u8], mode: u32) -> Result<()> {
    match out {
        Some(path) => Ok(veritee_platform::fsutil::write_new(path, bytes, mode)?),
        None => std::io::stdout()
            .write_all(bytes)
            .context("cannot write to stdout"),
    }
}

fn one(conn: &Connection, op: CryptoOp) -> Result<CryptoOutcome> {
    let mut outcomes = match call_once(conn, &Request::Crypto(vec![op]))? {
        Response::Crypto(outcomes) if outcomes.len() == 1 => outcomes,
        other => return Err(super::secret::unexpected("one operation outcome", &other)),
    };
    match outcomes.pop() {
        Some(CryptoOutcome::Error { code, message }) => {
            bail!("the enclave refused ({code}): {message}")
        }
        Some(outcome) => Ok(outcome),
        None => bail!("the enclave answered with no outcome"),
    }
}

fn unexpected(o: CryptoOutcome) -> anyhow::Error {
    anyhow::anyhow!("the enclave answered with an unexpected {o:?}")
}

/// Runs a crypto subcommand.
pub fn run(cmd: CryptoCommand) -> Result<Outcome> {
    use veritee_platform::fsutil::{PRIVATE_MODE, PUBLIC_MODE};
    match cmd {
        CryptoCommand::Encrypt { conn, key, aad, io } => {
            let plaintext = read_input(&io.input)?;
            match one(
                &conn,
                CryptoOp::Encrypt {
                    key,
                    plaintext,
                    aad: aad.into_bytes(),
                },
            )? {
                CryptoOutcome::Ciphertext(ct) => write_output(&io.out, &ct, PUBLIC_MODE)?,
                other => return Err(unexpected(other)),
            }
        }
        CryptoCommand::Decrypt { conn, key, aad, io } => {
            let ciphertext = read_input(&io.input)?.expose().clone();
            match one(
                &conn,
                CryptoOp::Decrypt {
                    key,
                    ciphertext,
                    aad: aad.into_bytes(),
                },
            )? {
                CryptoOutcome::Plaintext(p) => write_output(&io.out, p.expose(), PRIVATE_MODE)?,
                other => return Err(unexpected(other)),
            }
        }
        CryptoCommand::Translate {
            conn,
            key,
            to,
            aad,
            io,
        } => {
            let ciphertext = read_input(&io.input)?.expose().clone();
            let op = CryptoOp::Translate {
                from: key,
                to,
                ciphertext,
                aad: aad.into_bytes(),
            };
            match one(&conn, op)? {
                CryptoOutcome::Ciphertext(ct) => write_output(&io.out, &ct, PUBLIC_MODE)?,
                other => return Err(unexpected(other)),
            }
        }
        CryptoCommand::Sign { conn, key, io } => {
            let message = read_input(&io.input)?.expose().clone();
            match one(&conn, CryptoOp::Sign { key, message })? {
                CryptoOutcome::Signature { signature, version } => {
                    write_output(&io.out, &signature, PUBLIC_MODE)?;
                    eprintln!("signed with version {version} of the key");
                }
                other => return Err(unexpected(other)),
            }
        }
        CryptoCommand::Hmac { conn, key, io } => {
            let data = read_input(&io.input)?.expose().clone();
            match one(&conn, CryptoOp::Hmac { key, data })? {
                CryptoOutcome::Mac { tag, version } => {
                    write_output(&io.out, &tag, PUBLIC_MODE)?;
                    eprintln!("computed with version {version} of the key");
                }
                other => return Err(unexpected(other)),
            }
        }
        CryptoCommand::Verify {
            conn,
            key,
            key_version,
            signature,
            input,
        } => {
            let message = read_input(&input)?.expose().clone();
            let signature = crate::files::read(&signature, "signature")?;
            let op = CryptoOp::Verify {
                key,
                version: key_version,
                message,
                signature,
            };
            match one(&conn, op)? {
                CryptoOutcome::Verified(true) => println!("valid"),
                CryptoOutcome::Verified(false) => {
                    println!("INVALID: the signature does not verify with this key");
                    return Ok(Outcome::Rejected);
                }
                other => return Err(unexpected(other)),
            }
        }
        CryptoCommand::Rotate { conn, key } => {
            match one(&conn, CryptoOp::Rotate { key: key.clone() })? {
                CryptoOutcome::Rotated {
                    version,
                    public_key,
                } => {
                    println!("{key} is at version {version}");
                    if let Some(spki) = public_key {
                        print!("{}", veritee_x509::pem::encode("PUBLIC KEY", &spki));
                    }
                }
                other => return Err(unexpected(other)),
            }
        }
        CryptoCommand::MinVersion { conn, key, version } => {
            let op = CryptoOp::SetMinimumVersion {
                key: key.clone(),
                version,
            };
            match one(&conn, op)? {
                CryptoOutcome::Done => println!("{key} accepts versions {version} and newer"),
                other => return Err(unexpected(other)),
            }
        }
        CryptoCommand::Hash {
            conn,
            algorithm,
            input,
        } => {
            let data = read_input(&input)?.expose().clone();
            match one(&conn, CryptoOp::Hash { algorithm, data })? {
                CryptoOutcome::Digest(d) => println!("{}", hex::encode(d)),
                other => return Err(unexpected(other)),
            }
        }
    }
    Ok(Outcome::Success)
}
