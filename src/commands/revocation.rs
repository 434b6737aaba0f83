//! `veritee revocation ...`: a small revocation endpoint a key owner runs, which the
//! enclaves holding its imported keys ask at the interval each key's import set.

use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use veritee_crypto::sign::Ed25519SigningKey;
use veritee_import::revocation::{self, RevocationData, RevocationQuery, TOKEN_LEN};
use veritee_platform::fsutil;

/// Revocation subcommands.
#[derive(Debug, Subcommand)]
pub enum RevocationCommand {
    /// Serve the endpoint (POST /revocation): signed answers, "active" or "revoked",
    /// for the tokens in DIR. A token revoked while it serves is answered revoked at
    /// the next question.
    ///
    /// Example: veritee revocation serve --dir revocation --listen 127.0.0.1:8450
    Serve {
        /// The endpoint's directory (its signing key and tokens; created).
        #[arg(long)]
        dir: PathBuf,
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8450")]
        listen: SocketAddr,
    },
    /// Make a token for one key and write what `import send --revocation` takes.
    ///
    /// Example: veritee revocation add --dir revocation
    ///   --endpoint http://127.0.0.1:8450/revocation --out card-key.revocation.json
    Add {
        /// The endpoint's directory (created).
        #[arg(long)]
        dir: PathBuf,
        /// The endpoint's URL as enclaves reach it.
        #[arg(long)]
        endpoint: String,
        /// Where to write the token file (must not exist; it holds the token: keep it).
        #[arg(long)]
        out: PathBuf,
    },
    /// Revoke a token: every key imported with it is disabled for good at its
    /// enclave's next question.
    ///
    /// Example: veritee revocation revoke --dir revocation --token-id 3f2a...
    Revoke {
        /// The endpoint's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The token's id (printed by `add`, and in the token file).
        #[arg(long)]
        token_id: String,
    },
}

/// What `add` writes and `import send --revocation` reads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    /// The endpoint's URL.
    pub endpoint: String,
    /// The endpoint's Ed25519 public key, hex.
    pub endpoint_key: String,
    /// The token, hex (secret: it proves the asker is the enclave holding the key).
    pub token: String,
    /// The token's id.
    pub token_id: String,
}

impl TokenFile {
    /// The revocation data for an import that asks every `interval_secs`.
    pub fn data(&self, interval_secs: u64) -> Result<RevocationData> {
        let mut endpoint_key = [0u8; 32];
        hex::decode_to_slice(&self.endpoint_key, &mut endpoint_key)
            .context("the token file's endpoint_key is not 32 bytes of hex")?;
        let mut token = veritee_crypto::Confidential::new([0u8; TOKEN_LEN]);
        hex::decode_to_slice(&self.token, token.expose_mut())
            .context("the token file's token is not 32 bytes of hex")?;
        Ok(RevocationData {
            endpoint: self.endpoint.clone(),
            endpoint_key,
            token,
            interval_secs,
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tokens {
    tokens: BTreeMap<String, TokenEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
    revoked: bool,
}

const KEY_FILE: &str = "endpoint.pk8";
const TOKENS_FILE: &str = "tokens.json";

fn signing_key(dir: &Path) -> Result<Ed25519SigningKey> {
    fsutil::create_private_dir(dir)?;
    let path = dir.join(KEY_FILE);
    if path.exists() {
        let der = veritee_crypto::SecretBytes::new(crate::files::read(&path, "endpoint key")?);
        return Ed25519SigningKey::from_pkcs8(der.expose())
            .with_context(|| format!("{} is not an Ed25519 PKCS#8 key", path.display()));
    }
    let key = Ed25519SigningKey::generate()?;
    fsutil::write_new(&path, key.to_pkcs8()?.expose(), fsutil::PRIVATE_MODE)?;
    Ok(key)
}

fn load_tokens(dir: &Path) -> Result<Tokens> {
    let path = dir.join(TOKENS_FILE);
    if !path.exists() {
        return Ok(Tokens::default());
    }
    serde_json::from_slice(&crate::files::read(&path, "tokens")?)
        .with_context(|| format!("{} is not a token table", path.display()))
}

fn save_tokens(dir: &Path, tokens: &Tokens) -> Result<()> {
    Ok(fsutil::replace_durable(
        &dir.join(TOKENS_FILE),
        &serde_json::to_vec_pretty(tokens)?,
        fsutil::PRIVATE_MODE,
    )?)
}

/// Makes a token for one key, kept (active) in `dir`'s table.
pub(crate) fn add_token(dir: &Path, endpoint: String) -> Result<TokenFile> {
    let key = signing_key(dir)?;
    let token = veritee_crypto::rand::secret_array::<TOKEN_LEN>()?;
    let id = revocation::token_id(token.expose());
    let file = TokenFile {
        endpoint,
        endpoint_key: hex::encode(key.public_key()),
        token: hex::encode(token.expose()),
        token_id: id.clone(),
    };
    RevocationData::check(&file.data(revocation::MIN_INTERVAL_SECS)?)?;
    let mut tokens = load_tokens(dir)?;
    tokens.tokens.insert(
        id,
        TokenEntry {
            token: hex::encode(token.expose()),
            revoked: false,
        },
    );
    save_tokens(dir, &tokens)?;
    Ok(file)
}

/// Marks a token revoked: the endpoint answers "revoked" from its next question on.
pub(crate) fn revoke_token(dir: &Path, token_id: &str) -> Result<()> {
    let mut tokens = load_tokens(dir)?;
    let Some(entry) = tokens.tokens.get_mut(token_id) else {
        bail!("no token {token_id} in {}", dir.display());
    };
    entry.revoked = true;
    save_tokens(dir, &tokens)
}

/// Runs a revocation subcommand.
pub fn run(cmd: RevocationCommand) -> Result<Outcome> {
    match cmd {
        RevocationCommand::Add { dir, endpoint, out } => {
            let file = add_token(&dir, endpoint)?;
            fsutil::write_new(
                &out,
                &serde_json::to_vec_pretty(&file)?,
                fsutil::PRIVATE_MODE,
            )?;
            println!(
                "token {} (active) written to {}",
                file.token_id,
                out.display()
            );
        }
        RevocationCommand::Revoke { dir, token_id } => {
            revoke_token(&dir, &token_id)?;
            println!(
                "token {token_id} revoked: its keys are disabled at their enclave's next question"
            );
        }
        RevocationCommand::Serve { dir, listen } => {
            let signer = hex::encode(signing_key(&dir)?.public_key());
            serve(&dir, listen, |url| {
                println!("revocation endpoint on {url}, signing with {signer}")
            })?
        }
    }
    Ok(Outcome::Success)
}

/// Serves the endpoint for the tokens in `dir`; `on_ready` gets its URL.
pub(crate) fn serve(dir: &Path, listen: SocketAddr, on_ready: impl FnOnce(&str)) -> Result<()> {
    use axum::http::StatusCode;
    let key = std::sync::Arc::new(signing_key(dir)?);
    let dir = dir.to_path_buf();
    let state = (std::sync::Arc::clone(&key), dir.clone());
    let app = axum::Router::new()
        .route(
            "/revocation",
            axum::routing::post(
                |axum::extract::State((key, dir)): axum::extract::State<(
                    std::sync::Arc<Ed25519SigningKey>,
                    PathBuf,
                )>,
                 body: axum::body::Bytes| async move {
                    let Ok(query) = serde_json::from_slice::<RevocationQuery>(&body) else {
                        return (
                            StatusCode::BAD_REQUEST,
                            "not a revocation query".to_string(),
                        );
                    };
                    // Read on every question: a revocation takes effect at once.
                    let tokens = match load_tokens(&dir) {
                        Ok(t) => t,
                        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    };
                    let entry = tokens.tokens.get(&query.token_id);
                    let mut token = veritee_crypto::Confidential::new([0u8; TOKEN_LEN]);
                    let known = match entry {
                        Some(e) => hex::decode_to_slice(&e.token, token.expose_mut()).is_ok(),
                        None => false,
                    };
                    let revoked = entry.is_some_and(|e| e.revoked);
                    match revocation::answer(&key, &query, known.then_some(token.expose()), revoked)
                    {
                        Ok(a) => (
                            StatusCode::OK,
                            serde_json::to_string(&a).unwrap_or_default(),
                        ),
                        Err(e) => (StatusCode::UNAUTHORIZED, e.to_string()),
                    }
                },
            ),
        )
        .layer(axum::extract::DefaultBodyLimit::max(4096))
        .with_state(state);
    crate::serve::run(app, &dir, listen, "/revocation", on_ready)
}
