//! The tour's part for secret import (flow 3): a customer lends the node's enclave an
//! AES key and a signing key, encrypted to the attested TEE and to the pinned
//! provider, then uses them by id; a swapped provider key, a machine the vendor did
//! not issue to this provider, forbidden uses, a key its owner revoked, a quorum short
//! of one officer, a reused quorum token and an export are refused with their reasons.

use super::{Tour, short};
use anyhow::{Context, Result, bail, ensure};
use std::path::Path;
use veritee_channel::client::{Appraiser, TenantKey};
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_client::NodeClient;
use veritee_client::import::{
    ImportSpec, TeeLayer, ValidatedImportKeys, prepare_import, prepare_import_as,
};
use veritee_crypto::SecretBytes;
use veritee_import::formats::ImportFormat;
use veritee_import::keys::{KeyRef, KeyType, Operation};
use veritee_import::quorum::{Approval, QuorumProof, approve};

/// Runs the part; returns the key material imported (for the tour's search of what
/// the host saw).
pub(super) fn import_tour(
    t: &mut Tour,
    state: &Path,
    client: &NodeClient,
    tenant: &TenantKey,
    appraiser: &Appraiser<'_>,
) -> Result<Vec<Vec<u8>>> {
    t.step("Key service: two public keys, validated (the TEE's attested, the provider's pinned)");
    let pin_hex = std::fs::read_to_string(state.join("provider/provider.pub"))
        .context("the node's provider.pub")?;
    let mut pin = [0u8; 32];
    hex::decode_to_slice(pin_hex.trim(), &mut pin).context("provider.pub is not hex")?;
    let now = time::OffsetDateTime::now_utc();
    let fetched = client.fetch_import_keys()?;
    // A man in the middle hands over its own host key, stated by a provider key of its
    // own: the customer's pin refuses it.
    let mut swapped = fetched.clone();
    let mitm = veritee_crypto::sign::Ed25519SigningKey::generate()?;
    let forged = veritee_import::provider::SignedProviderStatement::sign(
        &mitm,
        &veritee_import::provider::ProviderStatement {
            provider: pin_hex.trim().to_string(),
            host_key: hex::encode(
                veritee_crypto::hpke::HpkeKeyPair::generate()
                    .public_key()
                    .as_bytes(),
            ),
            node_id: fetched.keys.tee.node_id.clone(),
            nonce: fetched.nonce.clone(),
            issued: fetched.fetched_at.clone(),
        },
    )?;
    {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        swapped.keys.provider_statement = b64.encode(&forged.statement);
        swapped.keys.provider_signature = b64.encode(&forged.signature);
    }
    match swapped.validate(appraiser, &pin, now) {
        Ok(_) => bail!("a swapped provider key was accepted"),
        Err(e) => println!("    a man in the middle's provider key: refused ({e})"),
    }
    let mut keys = fetched.validate(appraiser, &pin, now)?;
    for v in &keys.validations {
        println!("    validated {}", short_validation(v));
    }

    t.step("The vendor's validator: is the TEE's machine certified, issued to this provider, not revoked?");
    let vendor_dir = state.join("vendor");
    let validator = start_server(&vendor_dir, |dir, announce| {
        crate::commands::vendor::serve(dir, ([127, 0, 0, 1], 0).into(), announce)
    })?;
    let vendor_root = std::fs::read(vendor_dir.join("root.pem")).context("the vendor's root")?;
    match veritee_client::import::validate_with_vendor(&mut keys, &validator, &vendor_root, &pin) {
        Ok(()) => bail!("the vendor vouched for a machine it never issued to this provider"),
        Err(e) => println!("    before the vendor records whose machine it is: refused ({e})"),
    }
    let machine = veritee_platform::sim::SimMachine::open(&state.join("platform"))?.machine_id();
    veritee_platform::sim::SimVendor::open(&vendor_dir)?
        .assign_provider(&machine, pin_hex.trim())?;
    veritee_client::import::validate_with_vendor(&mut keys, &validator, &vendor_root, &pin)?;
    if let Some(v) = keys.validations.last() {
        println!("    validated {}", short_validation(v));
    }

    t.step("Import: each key encrypted to the TEE, then to the provider; the host peels only its layer");
    client.create_partition(tenant, "payments", None)?;
    let aes = SecretBytes::copy_from(&veritee_crypto::rand::array::<32>()?);
    let signer =
        veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256)?;
    let ec = signer.to_pkcs8()?;
    for (key_id, key_type, operations, material) in [
        (
            "card-key",
            KeyType::Aes256Gcm,
            vec![Operation::Encrypt, Operation::Decrypt],
            &aes,
        ),
        (
            "invoice-signer",
            KeyType::EcdsaP256,
            vec![Operation::Sign],
            &ec,
        ),
    ] {
        let spec = ImportSpec {
            partition: "payments".into(),
            key_id: key_id.into(),
            key_type,
            operations,
            rotate_after_secs: None,
            release: None,
            task_signers: vec![],
        };
        let prepared = prepare_import(&keys, tenant, &spec, material, None)?;
        let imported = client.send_import(tenant, &keys, &prepared)?;
        let c = &imported.confirmation;
        println!(
            "    payments/{} ({}, may {}): confirmed by the enclave, check value {}…",
            c.key_id,
            c.key_type,
            c.operations.join(", "),
            c.key_check.get(..24).unwrap_or(&c.key_check)
        );
    }

    // A key the customer's own tooling (an HSM export, openssl) wrapped in the format
    // AWS KMS and Google Cloud KMS take, to the enclave's attested RSA key: its
    // plaintext never reaches veritee's client.
    let hsm_key = SecretBytes::copy_from(&veritee_crypto::rand::array::<32>()?);
    let Some(tee_rsa) = &keys.tee_rsa_key else {
        bail!("the node states no RSA import key");
    };
    let wrapped = veritee_import::formats::rsa_aes_key_wrap(tee_rsa, &hsm_key)?;
    let spec = ImportSpec {
        partition: "payments".into(),
        key_id: "hsm-key".into(),
        key_type: KeyType::Aes256Gcm,
        operations: vec![Operation::Encrypt, Operation::Decrypt],
        rotate_after_secs: None,
        release: None,
        task_signers: vec![],
    };
    let layer = TeeLayer::Wrapped {
        format: ImportFormat::RsaAesKeyWrap,
        wrapped: &wrapped,
    };
    let imported = client.send_import(
        tenant,
        &keys,
        &prepare_import_as(&keys, tenant, &spec, layer)?,
    )?;
    println!(
        "    payments/hsm-key, wrapped by the customer's own tooling (CKM_RSA_AES_KEY_WRAP, {} bytes): confirmed, check value made in the enclave {}…",
        wrapped.len(),
        imported
            .confirmation
            .key_check
            .get(..24)
            .unwrap_or_default()
    );
    let mut swapped = prepare_import_as(
        &keys,
        tenant,
        &ImportSpec {
            key_id: "hsm-key-2".into(),
            ..spec
        },
        layer,
    )?;
    // The host swaps the wrapped key for one of its choosing: the signed digest differs.
    let theirs = veritee_import::formats::rsa_aes_key_wrap(
        tee_rsa,
        &SecretBytes::copy_from(&veritee_crypto::rand::array::<32>()?),
    )?;
    let metadata = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(&swapped.request.metadata)?
    };
    let digest = veritee_import::metadata::digest(&metadata);
    let outer =
        veritee_import::envelope::seal_provider_layer(&keys.provider_key, &digest, &theirs)?;
    {
        use base64::Engine;
        swapped.request.sealed = base64::engine::general_purpose::STANDARD.encode(outer);
    }
    match client.send_import(tenant, &keys, &swapped) {
        Ok(_) => bail!("a wrapped key swapped on the way was imported"),
        Err(e) => println!("    the same, its wrapped key swapped on the way: refused ({e})"),
    }

    t.step("Operations by key id, in an attested session: the host sees neither data nor results");
    let mut session = client.open_session(tenant, appraiser)?;
    let card = KeyRef::new("payments", "card-key");
    let signer_ref = KeyRef::new("payments", "invoice-signer");
    let outcomes = session.crypto(vec![
        CryptoOp::Encrypt {
            key: card.clone(),
            plaintext: SecretBytes::copy_from(b"4111 1111 1111 1111"),
            aad: b"order 7".to_vec(),
        },
        CryptoOp::Sign {
            key: signer_ref.clone(),
            message: b"invoice 7: 120 EUR".to_vec(),
        },
        CryptoOp::Sign {
            key: card.clone(),
            message: b"invoice 7: 120 EUR".to_vec(),
        },
        CryptoOp::Decrypt {
            key: signer_ref,
            ciphertext: vec![0; 40],
            aad: vec![],
        },
    ])?;
    let [
        CryptoOutcome::Ciphertext(ct),
        CryptoOutcome::Signature { signature: sig, .. },
        CryptoOutcome::Error { message: m1, .. },
        CryptoOutcome::Error { message: m2, .. },
    ] = &outcomes[..]
    else {
        bail!("unexpected outcomes: {outcomes:?}");
    };
    veritee_crypto::sign::verify(
        veritee_crypto::sign::VerificationScheme::EcdsaP256Sha256Fixed,
        signer.public_key_point(),
        b"invoice 7: 120 EUR",
        sig,
    )
    .context("the invoice signature does not verify with the signer's public key")?;
    println!(
        "    encrypt under card-key: {} bytes, {}",
        ct.len(),
        short(ct)
    );
    println!("    sign with invoice-signer: verifies with its public key outside the enclave");
    println!("    sign with card-key: refused ({m1})");
    println!("    decrypt with invoice-signer: refused ({m2})");
    let back = session.crypto(vec![CryptoOp::Decrypt {
        key: card.clone(),
        ciphertext: ct.clone(),
        aad: b"order 7".to_vec(),
    }])?;
    let [CryptoOutcome::Plaintext(p)] = &back[..] else {
        bail!("unexpected outcome: {back:?}");
    };
    ensure!(
        p.expose() == b"4111 1111 1111 1111",
        "the card number did not come back"
    );
    println!("    decrypt under card-key: the card number, to the customer only");

    let refund = revocation_part(t, state, client, tenant, appraiser, &keys)?;
    officers_part(t, client, tenant, appraiser, &card)?;
    Ok(vec![
        aes.expose().clone(),
        ec.expose().clone(),
        refund,
        hsm_key.expose().clone(),
    ])
}

/// The owner's revocation endpoint: a key whose token is active is used; a key whose
/// token the owner revoked is disabled for good at its next use. Returns the imported
/// key material.
fn revocation_part(
    t: &mut Tour,
    state: &Path,
    client: &NodeClient,
    tenant: &TenantKey,
    appraiser: &Appraiser<'_>,
    keys: &ValidatedImportKeys,
) -> Result<Vec<u8>> {
    t.step("Revocation: the enclave asks the owner's endpoint; the provider cannot silence it for long");
    let dir = state.join("revocation");
    let endpoint = start_server(&dir, |dir, announce| {
        crate::commands::revocation::serve(dir, ([127, 0, 0, 1], 0).into(), announce)
    })?;
    let material = SecretBytes::copy_from(&veritee_crypto::rand::array::<32>()?);
    for key_id in ["refund-key", "legacy-key"] {
        let token = crate::commands::revocation::add_token(&dir, endpoint.clone())?;
        let data = token.data(veritee_import::revocation::MIN_INTERVAL_SECS)?;
        let spec = ImportSpec {
            partition: "payments".into(),
            key_id: key_id.into(),
            key_type: KeyType::Aes256Gcm,
            operations: vec![Operation::Encrypt, Operation::Decrypt],
            rotate_after_secs: None,
            release: None,
            task_signers: vec![],
        };
        let prepared = prepare_import(keys, tenant, &spec, &material, Some(&data))?;
        client.send_import(tenant, keys, &prepared)?;
        println!(
            "    payments/{key_id} imported with revocation token {}…, asked every 60 s",
            &token.token_id[..12]
        );
        if key_id == "legacy-key" {
            crate::commands::revocation::revoke_token(&dir, &token.token_id)?;
            println!("    the owner revokes legacy-key's token at its endpoint");
        }
    }
    let mut session = client.open_session(tenant, appraiser)?;
    let outcomes = session.crypto(vec![
        CryptoOp::Encrypt {
            key: KeyRef::new("payments", "refund-key"),
            plaintext: SecretBytes::copy_from(b"refund 7: 120 EUR"),
            aad: vec![],
        },
        CryptoOp::Encrypt {
            key: KeyRef::new("payments", "legacy-key"),
            plaintext: SecretBytes::copy_from(b"refund 7: 120 EUR"),
            aad: vec![],
        },
    ])?;
    let [
        CryptoOutcome::Ciphertext(_),
        CryptoOutcome::Error {
            message: revoked, ..
        },
    ] = &outcomes[..]
    else {
        bail!("unexpected outcomes: {outcomes:?}");
    };
    println!(
        "    encrypt under refund-key: the endpoint answered \"active\" over the enclave's nonce"
    );
    println!("    encrypt under legacy-key: refused ({revoked})");
    Ok(material.expose().clone())
}

/// Security officers: once registered, disabling a key takes K of their approvals
/// on a single-use token; no quorum can export a key.
fn officers_part(
    t: &mut Tour,
    client: &NodeClient,
    tenant: &TenantKey,
    appraiser: &Appraiser<'_>,
    card: &KeyRef,
) -> Result<()> {
    t.step("Officers: disabling a key takes 2 of 2 security officers; nothing exports one");
    let officers = [
        veritee_crypto::sign::Ed25519SigningKey::generate()?,
        veritee_crypto::sign::Ed25519SigningKey::generate()?,
    ];
    for officer in &officers {
        client.register_officer(tenant, "security", &officer.public_key(), 2, None)?;
    }
    println!("    two security officers registered, quorum 2");
    match client.disable_key(tenant, card, None) {
        Ok(()) => bail!("the tenant alone disabled a key guarded by officers"),
        Err(e) => println!("    the tenant alone disables card-key: refused ({e})"),
    }
    let target = card.to_string();
    let token = client.quorum_token(tenant, "key.disable", &target)?;
    let approvals: Vec<Approval> = officers
        .iter()
        .map(|o| approve(o, &token))
        .collect::<Result<_, _>>()?;
    let proof = |n: usize| QuorumProof {
        token: hex::encode(&token),
        approvals: approvals[..n].to_vec(),
    };
    match client.disable_key(tenant, card, Some(proof(1))) {
        Ok(()) => bail!("one approval of two disabled a key"),
        Err(e) => println!("    with 1 approval of 2: refused ({e})"),
    }
    client.disable_key(tenant, card, Some(proof(2)))?;
    println!("    with 2 approvals of 2: card-key is disabled for good");
    match client.disable_key(tenant, card, Some(proof(2))) {
        Ok(()) => bail!("a quorum token was used twice"),
        Err(e) => println!("    the same approvals again: refused ({e})"),
    }
    let mut session = client.open_session(tenant, appraiser)?;
    let outcomes = session.crypto(vec![CryptoOp::Decrypt {
        key: card.clone(),
        ciphertext: vec![0; 40],
        aad: vec![],
    }])?;
    let [CryptoOutcome::Error { message, .. }] = &outcomes[..] else {
        bail!("a disabled key answered: {outcomes:?}");
    };
    println!("    decrypt under card-key: refused ({message})");
    match client.quorum_token(tenant, "key.export", &target) {
        Ok(_) => bail!("the enclave issued a token to export a key"),
        Err(e) => println!("    a quorum token to export card-key: refused ({e})"),
    }
    Ok(())
}

/// Starts a loopback server (`serve(dir, announce)`) in a thread that lives as long
/// as the tour, and waits for the URL it writes to `dir`/serve.addr.
fn start_server(
    dir: &Path,
    serve: impl FnOnce(&Path, &dyn Fn(&str)) -> Result<()> + Send + 'static,
) -> Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let addr_file = dir.join("serve.addr");
    let _ = std::fs::remove_file(&addr_file);
    let owned = dir.to_path_buf();
    std::thread::spawn(move || {
        let announce = |url: &str| println!("    listening on {url}");
        if let Err(e) = serve(&owned, &announce) {
            eprintln!("a server of the tour stopped: {e:#}");
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(url) = std::fs::read_to_string(&addr_file) {
            return Ok(url);
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "a server of the tour did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A validation statement, its long hex values cut short.
fn short_validation(v: &str) -> String {
    v.split(' ')
        .map(|w| {
            let (word, comma) = match w.strip_suffix(',') {
                Some(word) => (word, ","),
                None => (w, ""),
            };
            if word.len() > 24 && word.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                format!("{}…{comma}", &word[..12])
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
