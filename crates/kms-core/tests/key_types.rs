//! Every key type of AWS KMS through the official AWS SDK for Rust: key
//! spec × usage in CreateKey, every algorithm round trip, every wrong-type
//! cell of the key type table, size limits at and over the edge, DIGEST
//! length errors, data key pairs, and material surviving a restart.
//! Signatures, ciphertexts and shared secrets are also checked against an
//! independent computation with the public key from GetPublicKey.

mod common;

use aws_lc_rs::signature as sig;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::operation::{
    decapsulate::DecapsulateOutput, decrypt::DecryptOutput,
    derive_shared_secret::DeriveSharedSecretOutput, encapsulate::EncapsulateOutput,
    encrypt::EncryptOutput, sign::SignOutput,
};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncapsulationAlgorithmSpec, EncryptionAlgorithmSpec,
    KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType, MacAlgorithmSpec, MessageType,
    SigningAlgorithmSpec,
};
use aws_sdk_kms::Client;
use std::sync::Arc;

const ACCOUNT: &str = "111122223333";

async fn setup() -> (kms_core::server::KmsHandle, Client) {
    let kms = common::start_dev().await;
    let c = common::client(kms.addr, ACCOUNT, "secret", "eu-west-1");
    (kms, c)
}

async fn create(c: &Client, spec: &str, usage: &str) -> String {
    c.create_key()
        .key_spec(KeySpec::from(spec))
        .key_usage(KeyUsageType::from(usage))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{spec} {usage}: {:?}", e.into_service_error()))
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned()
}

/// Encapsulation key length of ML-KEM-512/768/1024.
fn ek_len(alg: &'static aws_lc_rs::kem::Algorithm) -> usize {
    if alg == &aws_lc_rs::kem::ML_KEM_512 {
        800
    } else if alg == &aws_lc_rs::kem::ML_KEM_768 {
        1184
    } else {
        1568
    }
}

fn err<E: ProvideErrorMetadata, R>(e: aws_sdk_kms::error::SdkError<E, R>) -> (String, String) {
    (
        ProvideErrorMetadata::code(&e).unwrap_or("?").to_owned(),
        ProvideErrorMetadata::message(&e).unwrap_or("").to_owned(),
    )
}

async fn public_key(c: &Client, id: &str) -> Vec<u8> {
    c.get_public_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .public_key()
        .unwrap()
        .as_ref()
        .to_vec()
}

/// The wire names of a list of algorithms.
fn names<T: AsRef<str>>(algorithms: &[T]) -> Vec<&str> {
    algorithms.iter().map(AsRef::as_ref).collect()
}

/// The calls the tests make over and over, each with its error as
/// (code, message).
type Call<T> = Result<T, (String, String)>;

/// Encrypt under key `id` (`alg` absent: the request names none).
async fn encrypt(
    c: &Client,
    id: &str,
    plaintext: &[u8],
    alg: Option<EncryptionAlgorithmSpec>,
) -> Call<EncryptOutput> {
    c.encrypt()
        .key_id(id)
        .plaintext(Blob::new(plaintext.to_vec()))
        .set_encryption_algorithm(alg)
        .send()
        .await
        .map_err(err)
}

async fn decrypt(
    c: &Client,
    id: &str,
    ciphertext: Blob,
    alg: Option<EncryptionAlgorithmSpec>,
) -> Call<DecryptOutput> {
    c.decrypt()
        .key_id(id)
        .ciphertext_blob(ciphertext)
        .set_encryption_algorithm(alg)
        .send()
        .await
        .map_err(err)
}

/// Sign `message`, RAW unless `message_type` says otherwise (absent: the
/// request names none).
async fn sign(
    c: &Client,
    id: &str,
    alg: &SigningAlgorithmSpec,
    message: &[u8],
    message_type: Option<MessageType>,
) -> Call<SignOutput> {
    c.sign()
        .key_id(id)
        .message(Blob::new(message.to_vec()))
        .set_message_type(message_type)
        .signing_algorithm(alg.clone())
        .send()
        .await
        .map_err(err)
}

/// Verify: whether the signature is valid.
async fn verify(
    c: &Client,
    id: &str,
    alg: &SigningAlgorithmSpec,
    message: &[u8],
    message_type: Option<MessageType>,
    signature: &[u8],
) -> Call<bool> {
    c.verify()
        .key_id(id)
        .message(Blob::new(message.to_vec()))
        .set_message_type(message_type)
        .signature(Blob::new(signature.to_vec()))
        .signing_algorithm(alg.clone())
        .send()
        .await
        .map(|v| v.signature_valid())
        .map_err(err)
}

/// GenerateMac: the MAC.
async fn generate_mac(c: &Client, id: &str, alg: &MacAlgorithmSpec, message: &[u8]) -> Call<Blob> {
    c.generate_mac()
        .key_id(id)
        .message(Blob::new(message.to_vec()))
        .mac_algorithm(alg.clone())
        .send()
        .await
        .map(|o| o.mac().unwrap().clone())
        .map_err(err)
}

/// VerifyMac: whether the MAC is valid.
async fn verify_mac(
    c: &Client,
    id: &str,
    alg: &MacAlgorithmSpec,
    message: &[u8],
    mac: Blob,
) -> Call<bool> {
    c.verify_mac()
        .key_id(id)
        .message(Blob::new(message.to_vec()))
        .mac(mac)
        .mac_algorithm(alg.clone())
        .send()
        .await
        .map(|v| v.mac_valid())
        .map_err(err)
}

/// DeriveSharedSecret (ECDH) with the peer's public key.
async fn derive(c: &Client, id: &str, peer_public: Vec<u8>) -> Call<DeriveSharedSecretOutput> {
    c.derive_shared_secret()
        .key_id(id)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(peer_public))
        .send()
        .await
        .map_err(err)
}

async fn encapsulate(c: &Client, id: &str) -> Call<EncapsulateOutput> {
    c.encapsulate()
        .key_id(id)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .send()
        .await
        .map_err(err)
}

async fn decapsulate(c: &Client, id: &str, ciphertext: Blob) -> Call<DecapsulateOutput> {
    c.decapsulate()
        .key_id(id)
        .shared_secret_ciphertext_blob(ciphertext)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .send()
        .await
        .map_err(err)
}

const USAGES: [&str; 5] = [
    "ENCRYPT_DECRYPT",
    "SIGN_VERIFY",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
    "ENCAPSULATE_DECAPSULATE",
];

/// (spec, valid usages, signing algs, encryption algs, mac alg)
fn table() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("SYMMETRIC_DEFAULT", vec!["ENCRYPT_DECRYPT"]),
        ("RSA_2048", vec!["ENCRYPT_DECRYPT", "SIGN_VERIFY"]),
        ("RSA_3072", vec!["ENCRYPT_DECRYPT", "SIGN_VERIFY"]),
        ("RSA_4096", vec!["ENCRYPT_DECRYPT", "SIGN_VERIFY"]),
        ("ECC_NIST_P256", vec!["SIGN_VERIFY", "KEY_AGREEMENT"]),
        ("ECC_NIST_P384", vec!["SIGN_VERIFY", "KEY_AGREEMENT"]),
        ("ECC_NIST_P521", vec!["SIGN_VERIFY", "KEY_AGREEMENT"]),
        ("ECC_SECG_P256K1", vec!["SIGN_VERIFY"]),
        ("ECC_NIST_EDWARDS25519", vec!["SIGN_VERIFY"]),
        ("HMAC_224", vec!["GENERATE_VERIFY_MAC"]),
        ("HMAC_256", vec!["GENERATE_VERIFY_MAC"]),
        ("HMAC_384", vec!["GENERATE_VERIFY_MAC"]),
        ("HMAC_512", vec!["GENERATE_VERIFY_MAC"]),
        ("ML_DSA_44", vec!["SIGN_VERIFY"]),
        ("ML_DSA_65", vec!["SIGN_VERIFY"]),
        ("ML_DSA_87", vec!["SIGN_VERIFY"]),
        ("ML_KEM_512", vec!["ENCAPSULATE_DECAPSULATE"]),
        ("ML_KEM_768", vec!["ENCAPSULATE_DECAPSULATE"]),
        ("ML_KEM_1024", vec!["ENCAPSULATE_DECAPSULATE"]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_spec_and_usage() {
    let (_kms, c) = setup().await;
    for (spec, valid) in table() {
        for usage in USAGES {
            let r = c
                .create_key()
                .key_spec(KeySpec::from(spec))
                .key_usage(KeyUsageType::from(usage))
                .send()
                .await;
            if !valid.contains(&usage) {
                let (code, message) = err(r.unwrap_err());
                assert_eq!(code, "ValidationException", "{spec} {usage}");
                assert_eq!(
                    message,
                    format!("KeyUsage {usage} is not compatible with KeySpec {spec}")
                );
                continue;
            }
            let created = r.unwrap_or_else(|e| panic!("{spec} {usage}: {e:?}"));
            let md = created.key_metadata().unwrap();
            assert_eq!(md.key_spec().unwrap().as_str(), spec);
            assert_eq!(md.key_usage().unwrap().as_str(), usage);
            let d = c.describe_key().key_id(md.key_id()).send().await.unwrap();
            let md = d.key_metadata().unwrap();
            let enc = names(md.encryption_algorithms());
            let sigs = names(md.signing_algorithms());
            let macs = names(md.mac_algorithms());
            let agree = names(md.key_agreement_algorithms());
            match (spec, usage) {
                ("SYMMETRIC_DEFAULT", _) => assert_eq!(enc, ["SYMMETRIC_DEFAULT"]),
                (s, "ENCRYPT_DECRYPT") if s.starts_with("RSA") => {
                    assert_eq!(enc, ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]);
                    assert!(sigs.is_empty());
                }
                (s, "SIGN_VERIFY") if s.starts_with("RSA") => {
                    assert!(enc.is_empty());
                    assert_eq!(sigs.len(), 6);
                }
                ("ECC_NIST_P256" | "ECC_SECG_P256K1", "SIGN_VERIFY") => {
                    assert_eq!(sigs, ["ECDSA_SHA_256"])
                }
                ("ECC_NIST_P384", "SIGN_VERIFY") => assert_eq!(sigs, ["ECDSA_SHA_384"]),
                ("ECC_NIST_P521", "SIGN_VERIFY") => assert_eq!(sigs, ["ECDSA_SHA_512"]),
                (_, "KEY_AGREEMENT") => {
                    assert_eq!(agree, ["ECDH"]);
                    assert!(sigs.is_empty() && enc.is_empty());
                }
                ("ECC_NIST_EDWARDS25519", _) => {
                    assert_eq!(sigs, ["ED25519_SHA_512", "ED25519_PH_SHA_512"])
                }
                (s, _) if s.starts_with("ML_DSA") => assert_eq!(sigs, ["ML_DSA_SHAKE_256"]),
                (s, _) if s.starts_with("HMAC") => {
                    assert_eq!(macs, [format!("HMAC_SHA_{}", &s[5..])]);
                    assert!(enc.is_empty());
                }
                (s, _) if s.starts_with("ML_KEM") => {
                    assert_eq!(names(md.encapsulation_algorithms()), ["ML_KEM"]);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // SM2 is refused clearly; the default usage does not fit ECC keys.
    let (code, message) = err(c
        .create_key()
        .key_spec(KeySpec::Sm2)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "UnsupportedOperationException");
    assert!(message.contains("China"), "{message}");
    let (code, _) = err(c
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "ValidationException");
    // RSA keys default to ENCRYPT_DECRYPT like AWS.
    let md = c
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .send()
        .await
        .unwrap();
    assert_eq!(
        md.key_metadata().unwrap().key_usage(),
        Some(&KeyUsageType::EncryptDecrypt)
    );
}

fn verification(spec: &str, alg: &str) -> &'static dyn sig::VerificationAlgorithm {
    match (spec, alg) {
        (_, "RSASSA_PSS_SHA_256") => &sig::RSA_PSS_2048_8192_SHA256,
        (_, "RSASSA_PSS_SHA_384") => &sig::RSA_PSS_2048_8192_SHA384,
        (_, "RSASSA_PSS_SHA_512") => &sig::RSA_PSS_2048_8192_SHA512,
        (_, "RSASSA_PKCS1_V1_5_SHA_256") => &sig::RSA_PKCS1_2048_8192_SHA256,
        (_, "RSASSA_PKCS1_V1_5_SHA_384") => &sig::RSA_PKCS1_2048_8192_SHA384,
        (_, "RSASSA_PKCS1_V1_5_SHA_512") => &sig::RSA_PKCS1_2048_8192_SHA512,
        ("ECC_NIST_P256", _) => &sig::ECDSA_P256_SHA256_ASN1,
        ("ECC_SECG_P256K1", _) => &sig::ECDSA_P256K1_SHA256_ASN1,
        ("ECC_NIST_P384", _) => &sig::ECDSA_P384_SHA384_ASN1,
        ("ECC_NIST_P521", _) => &sig::ECDSA_P521_SHA512_ASN1,
        ("ECC_NIST_EDWARDS25519", _) => &sig::ED25519,
        ("ML_DSA_44", _) => &sig::ML_DSA_44,
        ("ML_DSA_65", _) => &sig::ML_DSA_65,
        ("ML_DSA_87", _) => &sig::ML_DSA_87,
        other => panic!("{other:?}"),
    }
}

/// The SPKI → the key bytes aws-lc-rs verifies with (it parses SPKI too).
/// Ed25519ph (no aws-lc-rs verifier): kms-core's own verifier, itself
/// checked against RFC 8032's vector, on the raw public key.
fn verify_outside(spec: &str, alg: &str, spki: &[u8], message: &[u8], signature: &[u8]) {
    if alg == "ED25519_PH_SHA_512" {
        let public: [u8; 32] = spki[spki.len() - 32..].try_into().unwrap();
        assert!(kms_core::ed25519ph::verify_prehashed(
            &public,
            &kms_core::ed25519ph::prehash(message),
            signature
        ));
        return;
    }
    sig::UnparsedPublicKey::new(verification(spec, alg), spki)
        .verify(message, signature)
        .unwrap_or_else(|_| panic!("{spec} {alg}: signature does not verify outside kms-core"));
}

fn digest_of(alg: &str, message: &[u8]) -> Option<Vec<u8>> {
    let d = if alg.starts_with("ML_DSA") || alg == "ED25519_SHA_512" {
        return None;
    } else if alg == "ED25519_PH_SHA_512" {
        &aws_lc_rs::digest::SHA512
    } else if alg.ends_with("_256") {
        &aws_lc_rs::digest::SHA256
    } else if alg.ends_with("_384") {
        &aws_lc_rs::digest::SHA384
    } else if alg.ends_with("_512") {
        &aws_lc_rs::digest::SHA512
    } else {
        return None;
    };
    Some(aws_lc_rs::digest::digest(d, message).as_ref().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_and_verify_every_algorithm() {
    let (_kms, c) = setup().await;
    let specs = [
        "RSA_2048",
        "ECC_NIST_P256",
        "ECC_NIST_P384",
        "ECC_NIST_P521",
        "ECC_SECG_P256K1",
        "ECC_NIST_EDWARDS25519",
        "ML_DSA_44",
        "ML_DSA_65",
        "ML_DSA_87",
    ];
    let message = vec![0x61u8; 4096];
    for spec in specs {
        let id = create(&c, spec, "SIGN_VERIFY").await;
        let spki = public_key(&c, &id).await;
        let d = c.describe_key().key_id(&id).send().await.unwrap();
        let algs: Vec<String> = d
            .key_metadata()
            .unwrap()
            .signing_algorithms()
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect();
        for alg in &algs {
            let a = SigningAlgorithmSpec::from(alg.as_str());
            // RAW at the 4096-byte limit.
            let s = sign(&c, &id, &a, &message, None)
                .await
                .unwrap_or_else(|e| panic!("{spec} {alg}: {e:?}"));
            assert_eq!(s.signing_algorithm(), Some(&a));
            let signature = s.signature().unwrap().as_ref().to_vec();
            verify_outside(spec, alg, &spki, &message, &signature);
            assert!(verify(&c, &id, &a, &message, None, &signature)
                .await
                .unwrap());
            // A tampered message.
            let (code, _) = verify(&c, &id, &a, b"other", None, &signature)
                .await
                .unwrap_err();
            assert_eq!(code, "KMSInvalidSignatureException", "{spec} {alg}");
            if let Some(digest) = digest_of(alg, &message) {
                // DIGEST signing verifies as RAW and the other way round.
                let dt = || Some(MessageType::Digest);
                let s = sign(&c, &id, &a, &digest, dt()).await.unwrap();
                let ds = s.signature().unwrap().as_ref().to_vec();
                verify_outside(spec, alg, &spki, &message, &ds);
                assert!(verify(&c, &id, &a, &digest, dt(), &signature)
                    .await
                    .unwrap());
                for bad in [&digest[1..], &[digest.as_slice(), &[0]].concat()[..]] {
                    let (code, message) = sign(&c, &id, &a, bad, dt()).await.unwrap_err();
                    assert_eq!(code, "ValidationException", "{spec} {alg}");
                    assert_eq!(
                        message,
                        format!("Digest is invalid length for algorithm {alg}.")
                    );
                }
            } else {
                if alg == "ML_DSA_SHAKE_256" {
                    // EXTERNAL_MU: sign μ, verify as pure ML-DSA over the
                    // message (aws-lc) and the other way round.
                    let pk_len = match spec {
                        "ML_DSA_44" => 1312,
                        "ML_DSA_65" => 1952,
                        _ => 2592,
                    };
                    let ks = kms_core::keyspec::KeySpec::parse(spec).unwrap();
                    let mu =
                        kms_core::mldsa_mu::external_mu(ks, &spki[spki.len() - pk_len..], &message)
                            .unwrap();
                    let mt = || Some(MessageType::ExternalMu);
                    let s = sign(&c, &id, &a, &mu, mt()).await.unwrap();
                    verify_outside(spec, alg, &spki, &message, s.signature().unwrap().as_ref());
                    assert!(verify(&c, &id, &a, &mu, mt(), &signature).await.unwrap());
                    let (code, _) = sign(&c, &id, &a, &mu[1..], mt()).await.unwrap_err();
                    assert_eq!(code, "ValidationException");
                }
                let (code, _) = sign(&c, &id, &a, &[1; 64], Some(MessageType::Digest))
                    .await
                    .unwrap_err();
                assert_eq!(code, "ValidationException", "{spec} {alg}");
            }
        }
        // Over the message limit.
        let first = SigningAlgorithmSpec::from(algs[0].as_str());
        let (code, _) = sign(&c, &id, &first, &[0; 4097], None).await.unwrap_err();
        assert_eq!(code, "ValidationException");
        // An algorithm of another key type.
        let foreign = if spec.starts_with("RSA") {
            "ECDSA_SHA_256"
        } else {
            "RSASSA_PSS_SHA_256"
        };
        let (code, message) = sign(&c, &id, &SigningAlgorithmSpec::from(foreign), b"m", None)
            .await
            .unwrap_err();
        assert_eq!(code, "InvalidKeyUsageException");
        assert_eq!(
            message,
            format!("Algorithm {foreign} is incompatible with key spec {spec}.")
        );
    }
}

fn oaep(alg: &str) -> &'static aws_lc_rs::rsa::OaepAlgorithm {
    match alg {
        "RSAES_OAEP_SHA_1" => &aws_lc_rs::rsa::OAEP_SHA1_MGF1SHA1,
        _ => &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_encryption_limits_and_interop() {
    let (_kms, c) = setup().await;
    let symmetric = c.create_key().send().await.unwrap();
    let symmetric = symmetric.key_metadata().unwrap().key_id().to_owned();
    for (spec, limits) in [
        ("RSA_2048", [214usize, 190]),
        ("RSA_3072", [342, 318]),
        ("RSA_4096", [470, 446]),
    ] {
        let id = create(&c, spec, "ENCRYPT_DECRYPT").await;
        let spki = public_key(&c, &id).await;
        let outside = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(
            aws_lc_rs::rsa::PublicEncryptingKey::from_der(&spki).unwrap(),
        )
        .unwrap();
        for (alg, max) in ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
            .into_iter()
            .zip(limits)
        {
            let a = EncryptionAlgorithmSpec::from(alg);
            let at_limit = vec![0x42u8; max];
            let e = encrypt(&c, &id, &at_limit, Some(a.clone()))
                .await
                .unwrap_or_else(|e| panic!("{spec} {alg}: {e:?}"));
            assert_eq!(e.encryption_algorithm(), Some(&a));
            let ct = e.ciphertext_blob().unwrap().clone();
            let d = decrypt(&c, &id, ct, Some(a.clone())).await.unwrap();
            assert_eq!(d.plaintext().unwrap().as_ref(), &at_limit[..]);
            let (code, message) = encrypt(&c, &id, &vec![0x42u8; max + 1], Some(a.clone()))
                .await
                .unwrap_err();
            assert_eq!(code, "ValidationException", "{spec} {alg}");
            // AWS's text (issue 15).
            assert_eq!(
                message,
                format!(
                    "Algorithm {alg} and key spec {spec} cannot encrypt data larger than {max} bytes."
                )
            );
            // Encrypted outside with the public key, decrypted inside.
            let mut out = vec![0u8; outside.ciphertext_size()];
            let ct = outside
                .encrypt(oaep(alg), b"from outside", &mut out, None)
                .unwrap()
                .to_vec();
            let d = decrypt(&c, &id, Blob::new(ct.clone()), Some(a.clone()))
                .await
                .unwrap();
            assert_eq!(d.plaintext().unwrap().as_ref(), b"from outside");
            // The other OAEP hash does not decrypt it.
            let other = if alg == "RSAES_OAEP_SHA_1" {
                EncryptionAlgorithmSpec::RsaesOaepSha256
            } else {
                EncryptionAlgorithmSpec::RsaesOaepSha1
            };
            let (code, _) = decrypt(&c, &id, Blob::new(ct.clone()), Some(other))
                .await
                .unwrap_err();
            assert_eq!(code, "InvalidCiphertextException");
        }
        if spec != "RSA_2048" {
            continue;
        }
        // EncryptionAlgorithm is required; no encryption context.
        let (code, message) = encrypt(&c, &id, b"x", None).await.unwrap_err();
        assert_eq!(code, "InvalidKeyUsageException");
        assert_eq!(
            message,
            "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."
        );
        let (code, _) = err(c
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new(b"x".to_vec()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .encryption_context("k", "v")
            .send()
            .await
            .unwrap_err());
        assert_eq!(code, "ValidationException");
        // Symmetric keys refuse the RSA algorithms.
        let rsa = Some(EncryptionAlgorithmSpec::RsaesOaepSha256);
        let (code, _) = encrypt(&c, &symmetric, b"x", rsa).await.unwrap_err();
        assert_eq!(code, "InvalidKeyUsageException");
        // ReEncrypt: symmetric → RSA → symmetric.
        let sym_ct = c
            .encrypt()
            .key_id(&symmetric)
            .plaintext(Blob::new(b"moving".to_vec()))
            .encryption_context("a", "b")
            .send()
            .await
            .unwrap()
            .ciphertext_blob()
            .unwrap()
            .clone();
        let to_rsa = c
            .re_encrypt()
            .ciphertext_blob(sym_ct)
            .source_encryption_context("a", "b")
            .destination_key_id(&id)
            .destination_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha1)
            .send()
            .await
            .unwrap();
        assert_eq!(
            to_rsa.destination_encryption_algorithm(),
            Some(&EncryptionAlgorithmSpec::RsaesOaepSha1)
        );
        assert_eq!(
            to_rsa.source_encryption_algorithm(),
            Some(&EncryptionAlgorithmSpec::SymmetricDefault)
        );
        let back = c
            .re_encrypt()
            .ciphertext_blob(to_rsa.ciphertext_blob().unwrap().clone())
            .source_key_id(&id)
            .source_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha1)
            .destination_key_id(&symmetric)
            .destination_encryption_context("c", "d")
            .send()
            .await
            .unwrap();
        let d = c
            .decrypt()
            .ciphertext_blob(back.ciphertext_blob().unwrap().clone())
            .encryption_context("c", "d")
            .send()
            .await
            .unwrap();
        assert_eq!(d.plaintext().unwrap().as_ref(), b"moving");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_every_spec() {
    let (_kms, c) = setup().await;
    for (spec, alg, len) in [
        ("HMAC_224", "HMAC_SHA_224", 28),
        ("HMAC_256", "HMAC_SHA_256", 32),
        ("HMAC_384", "HMAC_SHA_384", 48),
        ("HMAC_512", "HMAC_SHA_512", 64),
    ] {
        let id = create(&c, spec, "GENERATE_VERIFY_MAC").await;
        let a = MacAlgorithmSpec::from(alg);
        let message = [7; 4096];
        let mac = generate_mac(&c, &id, &a, &message).await.unwrap();
        assert_eq!(mac.as_ref().len(), len);
        assert!(verify_mac(&c, &id, &a, &message, mac.clone())
            .await
            .unwrap());
        let mut bad = mac.as_ref().to_vec();
        bad[0] ^= 1;
        let (code, _) = verify_mac(&c, &id, &a, &message, Blob::new(bad))
            .await
            .unwrap_err();
        assert_eq!(code, "KMSInvalidMacException");
        let wrong = if alg == "HMAC_SHA_256" {
            MacAlgorithmSpec::HmacSha512
        } else {
            MacAlgorithmSpec::HmacSha256
        };
        let (code, _) = generate_mac(&c, &id, &wrong, &[7]).await.unwrap_err();
        assert_eq!(code, "InvalidKeyUsageException");
        let (code, _) = generate_mac(&c, &id, &a, &[7; 4097]).await.unwrap_err();
        assert_eq!(code, "ValidationException");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdh_matches_the_peer() {
    use aws_lc_rs::agreement;
    use aws_lc_rs::encoding::AsDer;
    let (_kms, c) = setup().await;
    for (spec, alg) in [
        ("ECC_NIST_P256", &agreement::ECDH_P256),
        ("ECC_NIST_P384", &agreement::ECDH_P384),
        ("ECC_NIST_P521", &agreement::ECDH_P521),
    ] {
        let id = create(&c, spec, "KEY_AGREEMENT").await;
        let kms_public = public_key(&c, &id).await;
        let peer = agreement::PrivateKey::generate(alg).unwrap();
        let peer_spki = peer.compute_public_key().unwrap().as_der().unwrap();
        let r = derive(&c, &id, peer_spki.as_ref().to_vec()).await.unwrap();
        let ours = agreement::agree(
            &peer,
            agreement::UnparsedPublicKey::new(alg, &kms_public),
            (),
            |s| Ok(s.to_vec()),
        )
        .unwrap();
        assert_eq!(r.shared_secret().unwrap().as_ref(), &ours[..], "{spec}");
        assert_eq!(r.key_origin().map(|o| o.as_str()), Some("AWS_KMS"));
        // A key of another curve, or not a key at all.
        let other = agreement::PrivateKey::generate(if spec == "ECC_NIST_P256" {
            &agreement::ECDH_P384
        } else {
            &agreement::ECDH_P256
        })
        .unwrap();
        for bad in [
            other
                .compute_public_key()
                .unwrap()
                .as_der()
                .unwrap()
                .as_ref()
                .to_vec(),
            b"not a key".to_vec(),
        ] {
            let (code, _) = derive(&c, &id, bad).await.unwrap_err();
            assert_eq!(code, "ValidationException", "{spec}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_kem_encapsulate_decapsulate() {
    use aws_lc_rs::kem;
    let (_kms, c) = setup().await;
    for (spec, alg) in [
        ("ML_KEM_512", &kem::ML_KEM_512),
        ("ML_KEM_768", &kem::ML_KEM_768),
        ("ML_KEM_1024", &kem::ML_KEM_1024),
    ] {
        let id = create(&c, spec, "ENCAPSULATE_DECAPSULATE").await;
        let e = encapsulate(&c, &id).await.unwrap();
        let ct = e.shared_secret_ciphertext_blob().unwrap().clone();
        let d = decapsulate(&c, &id, ct.clone()).await.unwrap();
        assert_eq!(d.shared_secret(), e.shared_secret());
        // Encapsulated outside with the public key (the SPKI's BIT STRING).
        let spki = public_key(&c, &id).await;
        let ek_len = ek_len(alg);
        let ek = kem::EncapsulationKey::new(alg, &spki[spki.len() - ek_len..]).unwrap();
        let (ct2, ss2) = ek.encapsulate().unwrap();
        let d = decapsulate(&c, &id, Blob::new(ct2.as_ref().to_vec()))
            .await
            .unwrap();
        assert_eq!(d.shared_secret().unwrap().as_ref(), ss2.as_ref());
        let (code, _) = decapsulate(&c, &id, Blob::new(ct.as_ref()[1..].to_vec()))
            .await
            .unwrap_err();
        assert_eq!(code, "InvalidCiphertextException");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_key_pairs_of_every_spec() {
    let (_kms, c) = setup().await;
    let wrapping = c.create_key().send().await.unwrap();
    let wrapping = wrapping.key_metadata().unwrap().key_id().to_owned();
    for spec in [
        "RSA_2048",
        "RSA_3072",
        "RSA_4096",
        "ECC_NIST_P256",
        "ECC_NIST_P384",
        "ECC_NIST_P521",
        "ECC_SECG_P256K1",
        "ECC_NIST_EDWARDS25519",
        "ML_KEM_512",
        "ML_KEM_768",
        "ML_KEM_1024",
    ] {
        let r = c
            .generate_data_key_pair()
            .key_id(&wrapping)
            .key_pair_spec(DataKeyPairSpec::from(spec))
            .encryption_context("purpose", "test")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{spec}: {e:?}"));
        assert_eq!(r.key_pair_spec().unwrap().as_str(), spec);
        let private = r.private_key_plaintext().unwrap().as_ref().to_vec();
        let public = r.public_key().unwrap().as_ref().to_vec();
        assert_eq!(public[0], 0x30, "{spec}: DER SubjectPublicKeyInfo");
        let d = c
            .decrypt()
            .ciphertext_blob(r.private_key_ciphertext_blob().unwrap().clone())
            .encryption_context("purpose", "test")
            .send()
            .await
            .unwrap();
        assert_eq!(d.plaintext().unwrap().as_ref(), &private[..], "{spec}");
        // The pair matches: sign with the private key, verify with the public.
        let signed = match spec {
            "ECC_NIST_P256" | "ECC_NIST_P384" | "ECC_NIST_P521" | "ECC_SECG_P256K1" => {
                let (s, v) = match spec {
                    "ECC_NIST_P256" => (
                        &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
                        &sig::ECDSA_P256_SHA256_ASN1,
                    ),
                    "ECC_NIST_P384" => (
                        &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
                        &sig::ECDSA_P384_SHA384_ASN1,
                    ),
                    "ECC_NIST_P521" => (
                        &sig::ECDSA_P521_SHA512_ASN1_SIGNING,
                        &sig::ECDSA_P521_SHA512_ASN1,
                    ),
                    _ => (
                        &sig::ECDSA_P256K1_SHA256_ASN1_SIGNING,
                        &sig::ECDSA_P256K1_SHA256_ASN1,
                    ),
                };
                let kp = sig::EcdsaKeyPair::from_pkcs8(s, &private).unwrap();
                let signature = kp
                    .sign(&aws_lc_rs::rand::SystemRandom::new(), b"m")
                    .unwrap();
                Some((
                    v as &dyn sig::VerificationAlgorithm,
                    signature.as_ref().to_vec(),
                ))
            }
            "ECC_NIST_EDWARDS25519" => {
                let kp = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&private).unwrap();
                Some((
                    &sig::ED25519 as &dyn sig::VerificationAlgorithm,
                    kp.sign(b"m").as_ref().to_vec(),
                ))
            }
            s if s.starts_with("RSA") => {
                let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(&private).unwrap();
                let mut out = vec![0; kp.public_modulus_len()];
                kp.sign(
                    &sig::RSA_PSS_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    b"m",
                    &mut out,
                )
                .unwrap();
                Some((
                    &sig::RSA_PSS_2048_8192_SHA256 as &dyn sig::VerificationAlgorithm,
                    out,
                ))
            }
            _ => None,
        };
        if let Some((alg, signature)) = signed {
            sig::UnparsedPublicKey::new(alg, &public)
                .verify(b"m", &signature)
                .unwrap_or_else(|_| panic!("{spec}: the pair does not match"));
        }
        if spec.starts_with("ML_KEM") {
            // PKCS#8 seed form ([0] 64 bytes, last in the DER): aws-lc
            // encapsulates to the public key, ml-kem decapsulates with the seed.
            use ml_kem::Decapsulate;
            assert_eq!(
                &private[private.len() - 66..private.len() - 64],
                &[0x80, 0x40]
            );
            let seed = ml_kem::Seed::try_from(&private[private.len() - 64..]).unwrap();
            let alg = match spec {
                "ML_KEM_512" => &aws_lc_rs::kem::ML_KEM_512,
                "ML_KEM_768" => &aws_lc_rs::kem::ML_KEM_768,
                _ => &aws_lc_rs::kem::ML_KEM_1024,
            };
            let len = ek_len(alg);
            let ek =
                aws_lc_rs::kem::EncapsulationKey::new(alg, &public[public.len() - len..]).unwrap();
            let (ct, ss) = ek.encapsulate().unwrap();
            let got = match spec {
                "ML_KEM_512" => ml_kem::DecapsulationKey::<ml_kem::MlKem512>::from_seed(seed)
                    .decapsulate(
                        &ml_kem::Ciphertext::<ml_kem::MlKem512>::try_from(ct.as_ref()).unwrap(),
                    )
                    .to_vec(),
                "ML_KEM_768" => ml_kem::DecapsulationKey::<ml_kem::MlKem768>::from_seed(seed)
                    .decapsulate(
                        &ml_kem::Ciphertext::<ml_kem::MlKem768>::try_from(ct.as_ref()).unwrap(),
                    )
                    .to_vec(),
                _ => ml_kem::DecapsulationKey::<ml_kem::MlKem1024>::from_seed(seed)
                    .decapsulate(
                        &ml_kem::Ciphertext::<ml_kem::MlKem1024>::try_from(ct.as_ref()).unwrap(),
                    )
                    .to_vec(),
            };
            assert_eq!(got, ss.as_ref(), "{spec}");
        }
    }
    let r = c
        .generate_data_key_pair_without_plaintext()
        .key_id(&wrapping)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap();
    assert!(r.private_key_ciphertext_blob().is_some() && r.public_key().is_some());
    let (code, _) = err(c
        .generate_data_key_pair()
        .key_id(&wrapping)
        .key_pair_spec(DataKeyPairSpec::Sm2)
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "UnsupportedOperationException");
}

/// Every cell of the key type table for the operations that depend on the
/// key type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wrong_type_cell() {
    let (_kms, c) = setup().await;
    let keys = [
        ("symmetric", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
        ("hmac", "HMAC_256", "GENERATE_VERIFY_MAC"),
        ("rsa-encrypt", "RSA_2048", "ENCRYPT_DECRYPT"),
        ("sign", "ECC_NIST_P256", "SIGN_VERIFY"),
        ("agreement", "ECC_NIST_P256", "KEY_AGREEMENT"),
        ("kem", "ML_KEM_768", "ENCAPSULATE_DECAPSULATE"),
    ];
    let ops = [
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateMac",
        "VerifyMac",
        "GetPublicKey",
        "Sign",
        "Verify",
        "DeriveSharedSecret",
        "Encapsulate",
        "Decapsulate",
    ];
    let yes = |class: &str, op: &str| -> bool {
        match op {
            "Encrypt" | "Decrypt" | "ReEncrypt" => matches!(class, "symmetric" | "rsa-encrypt"),
            "GenerateDataKey"
            | "GenerateDataKeyWithoutPlaintext"
            | "GenerateDataKeyPair"
            | "GenerateDataKeyPairWithoutPlaintext" => class == "symmetric",
            "GenerateMac" | "VerifyMac" => class == "hmac",
            "GetPublicKey" => !matches!(class, "symmetric" | "hmac"),
            "Sign" | "Verify" => class == "sign",
            "DeriveSharedSecret" => class == "agreement",
            _ => class == "kem",
        }
    };
    let peer = {
        use aws_lc_rs::encoding::AsDer;
        let k =
            aws_lc_rs::agreement::PrivateKey::generate(&aws_lc_rs::agreement::ECDH_P256).unwrap();
        k.compute_public_key()
            .unwrap()
            .as_der()
            .unwrap()
            .as_ref()
            .to_vec()
    };
    let mut checked = 0;
    for (class, spec, usage) in keys {
        let id = create(&c, spec, usage).await;
        let arn = format!("arn:aws:kms:eu-west-1:{ACCOUNT}:key/{id}");
        for op in ops {
            let rsa = (class == "rsa-encrypt").then_some(EncryptionAlgorithmSpec::RsaesOaepSha256);
            let mac_alg = MacAlgorithmSpec::HmacSha256;
            let sig_alg = SigningAlgorithmSpec::EcdsaSha256;
            let r: Call<()> = match op {
                "Encrypt" => encrypt(&c, &id, b"x", rsa).await.map(|_| ()),
                "Decrypt" => {
                    // A real ciphertext of the key when it has one.
                    let ct = match encrypt(&c, &id, b"x", rsa.clone()).await {
                        Ok(o) => o.ciphertext_blob().unwrap().clone(),
                        Err(_) => Blob::new(vec![0u8; 32]),
                    };
                    decrypt(&c, &id, ct, rsa).await.map(|_| ())
                }
                "ReEncrypt" => {
                    let sym = c.create_key().send().await.unwrap();
                    let sym = sym.key_metadata().unwrap().key_id().to_owned();
                    let ct = encrypt(&c, &sym, b"x", None)
                        .await
                        .unwrap()
                        .ciphertext_blob()
                        .unwrap()
                        .clone();
                    c.re_encrypt()
                        .ciphertext_blob(ct)
                        .destination_key_id(&id)
                        .set_destination_encryption_algorithm(rsa)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(err)
                }
                "GenerateDataKey" => c
                    .generate_data_key()
                    .key_id(&id)
                    .number_of_bytes(32)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(err),
                "GenerateDataKeyWithoutPlaintext" => c
                    .generate_data_key_without_plaintext()
                    .key_id(&id)
                    .number_of_bytes(32)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(err),
                "GenerateDataKeyPair" => c
                    .generate_data_key_pair()
                    .key_id(&id)
                    .key_pair_spec(DataKeyPairSpec::EccNistP256)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(err),
                "GenerateDataKeyPairWithoutPlaintext" => c
                    .generate_data_key_pair_without_plaintext()
                    .key_id(&id)
                    .key_pair_spec(DataKeyPairSpec::EccNistP256)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(err),
                "GenerateMac" => generate_mac(&c, &id, &mac_alg, b"m").await.map(|_| ()),
                "VerifyMac" => {
                    let mac = generate_mac(&c, &id, &mac_alg, b"m")
                        .await
                        .unwrap_or_else(|_| Blob::new(vec![0; 32]));
                    verify_mac(&c, &id, &mac_alg, b"m", mac).await.map(|_| ())
                }
                "GetPublicKey" => c
                    .get_public_key()
                    .key_id(&id)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(err),
                "Sign" => sign(&c, &id, &sig_alg, b"m", None).await.map(|_| ()),
                "Verify" => {
                    let signature = sign(&c, &id, &sig_alg, b"m", None)
                        .await
                        .ok()
                        .and_then(|o| o.signature().map(|s| s.as_ref().to_vec()))
                        .unwrap_or_else(|| vec![0; 64]);
                    verify(&c, &id, &sig_alg, b"m", None, &signature)
                        .await
                        .map(|_| ())
                }
                "DeriveSharedSecret" => derive(&c, &id, peer.clone()).await.map(|_| ()),
                "Encapsulate" => encapsulate(&c, &id).await.map(|_| ()),
                _ => {
                    let ct = encapsulate(&c, &id)
                        .await
                        .ok()
                        .and_then(|o| o.shared_secret_ciphertext_blob().cloned())
                        .unwrap_or_else(|| Blob::new(vec![0; 1088]));
                    decapsulate(&c, &id, ct).await.map(|_| ())
                }
            };
            checked += 1;
            if yes(class, op) {
                r.unwrap_or_else(|e| panic!("{op} on {class}: {e:?}"));
                continue;
            }
            let (code, message) = r.expect_err(&format!("{op} on {class} must fail"));
            if op == "GetPublicKey" {
                assert_eq!(code, "UnsupportedOperationException", "{op} on {class}");
            } else {
                assert_eq!(
                    code, "InvalidKeyUsageException",
                    "{op} on {class}: {message}"
                );
                let want = if class == "rsa-encrypt" && op.starts_with("GenerateDataKey") {
                    format!("{arn} key spec is RSA_2048 which is not valid for {op}.")
                } else {
                    format!("{arn} key usage is {usage} which is not valid for {op}.")
                };
                assert_eq!(message, want);
            }
        }
    }
    assert_eq!(checked, 6 * 15);
}

/// Keys of every kind created on SQLite keep working after the store is
/// reopened (material persisted wrapped, parsed again at load).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn material_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Arc::new(
            kms_core::store::SqliteStore::open_with_key(
                dir.path(),
                local_key::MasterKey::from_bytes(&[9; 32]).unwrap(),
            )
            .unwrap(),
        )
    };
    let kinds = [
        ("RSA_2048", "SIGN_VERIFY"),
        ("ECC_NIST_P384", "SIGN_VERIFY"),
        ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"),
        ("ML_DSA_65", "SIGN_VERIFY"),
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("HMAC_384", "GENERATE_VERIFY_MAC"),
        ("ECC_NIST_P256", "KEY_AGREEMENT"),
        ("ML_KEM_512", "ENCAPSULATE_DECAPSULATE"),
    ];
    let mut before = Vec::new();
    {
        let kms = common::start_with(kms_core::auth::AuthMode::Development, open()).await;
        let c = common::client(kms.addr, ACCOUNT, "secret", "eu-west-1");
        for (spec, usage) in kinds {
            let id = create(&c, spec, usage).await;
            let public = if usage == "GENERATE_VERIFY_MAC" {
                generate_mac(&c, &id, &MacAlgorithmSpec::HmacSha384, b"m")
                    .await
                    .unwrap()
                    .into_inner()
            } else {
                public_key(&c, &id).await
            };
            before.push((id, public));
        }
        kms.shutdown().await;
    }
    let kms = common::start_with(kms_core::auth::AuthMode::Development, open()).await;
    let c = common::client(kms.addr, ACCOUNT, "secret", "eu-west-1");
    for ((spec, usage), (id, public)) in kinds.iter().zip(&before) {
        if *usage == "GENERATE_VERIFY_MAC" {
            let mac = Blob::new(public.clone());
            assert!(verify_mac(&c, id, &MacAlgorithmSpec::HmacSha384, b"m", mac)
                .await
                .unwrap());
        } else {
            assert_eq!(&public_key(&c, id).await, public, "{spec} {usage}");
        }
    }
}

/// UpdateAlias: both keys of the same type and key usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_alias_keeps_type_and_usage() {
    let (_kms, c) = setup().await;
    let sign_a = create(&c, "ECC_NIST_P256", "SIGN_VERIFY").await;
    let sign_b = create(&c, "ML_DSA_65", "SIGN_VERIFY").await;
    let agree = create(&c, "ECC_NIST_P256", "KEY_AGREEMENT").await;
    let hmac = create(&c, "HMAC_256", "GENERATE_VERIFY_MAC").await;
    let symmetric = c.create_key().send().await.unwrap();
    let symmetric = symmetric.key_metadata().unwrap().key_id().to_owned();
    c.create_alias()
        .alias_name("alias/signer")
        .target_key_id(&sign_a)
        .send()
        .await
        .unwrap();
    // Asymmetric SIGN_VERIFY → asymmetric SIGN_VERIFY of another spec: fine.
    c.update_alias()
        .alias_name("alias/signer")
        .target_key_id(&sign_b)
        .send()
        .await
        .unwrap();
    for other in [&agree, &hmac, &symmetric] {
        let (code, message) = err(c
            .update_alias()
            .alias_name("alias/signer")
            .target_key_id(other)
            .send()
            .await
            .unwrap_err());
        assert_eq!(code, "ValidationException", "{message}");
    }
    let d = c
        .describe_key()
        .key_id("alias/signer")
        .send()
        .await
        .unwrap();
    assert_eq!(d.key_metadata().unwrap().key_id(), sign_b);
    // Signing through the alias.
    let s = sign(
        &c,
        "alias/signer",
        &SigningAlgorithmSpec::MlDsaShake256,
        b"release",
        None,
    )
    .await
    .unwrap();
    assert!(s.signature().is_some());
}

/// The key state table applies to the new operations: a disabled key
/// refuses Sign, Verify, GetPublicKey, GenerateMac, DeriveSharedSecret and
/// Encapsulate with DisabledException; DryRun answers after validation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_states_and_dry_run() {
    let (_kms, c) = setup().await;
    let sign = create(&c, "ECC_NIST_P256", "SIGN_VERIFY").await;
    let mac = create(&c, "HMAC_512", "GENERATE_VERIFY_MAC").await;
    let kem = create(&c, "ML_KEM_1024", "ENCAPSULATE_DECAPSULATE").await;
    let (code, _) = err(c
        .sign()
        .key_id(&sign)
        .message(Blob::new(b"m".to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .dry_run(true)
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "DryRunOperationException");
    for id in [&sign, &mac, &kem] {
        c.disable_key().key_id(id).send().await.unwrap();
    }
    let ecdsa = SigningAlgorithmSpec::EcdsaSha256;
    let (code, _) = self::sign(&c, &sign, &ecdsa, b"m", None).await.unwrap_err();
    assert_eq!(code, "DisabledException");
    let (code, _) = err(c.get_public_key().key_id(&sign).send().await.unwrap_err());
    assert_eq!(code, "DisabledException");
    let (code, _) = generate_mac(&c, &mac, &MacAlgorithmSpec::HmacSha512, b"m")
        .await
        .unwrap_err();
    assert_eq!(code, "DisabledException");
    let (code, _) = encapsulate(&c, &kem).await.unwrap_err();
    assert_eq!(code, "DisabledException");
    c.enable_key().key_id(&sign).send().await.unwrap();
    c.schedule_key_deletion()
        .key_id(&sign)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let (code, _) = verify(&c, &sign, &ecdsa, b"m", None, &[0; 70])
        .await
        .unwrap_err();
    assert_eq!(code, "KMSInvalidStateException");
}
