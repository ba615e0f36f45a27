//! Key specs, key usages and algorithms as AWS KMS defines them, and the
//! seed's key type table ("which operation works on which type of key") as
//! pure functions:
//!
//! * [`parse_create`]: the `KeySpec`/`KeyUsage` pair of a CreateKey request,
//!   validated the way AWS does (invalid combinations are
//!   `ValidationException: KeyUsage X is not compatible with KeySpec Y`;
//!   SM2 exists only in the China Regions and is refused clearly);
//! * [`KeySpec::encryption_algorithms`] and friends: what DescribeKey and
//!   GetPublicKey list per key;
//! * [`check_usage`]: the key type table. An operation on a key type that
//!   does not support it is `InvalidKeyUsageException` (or
//!   `UnsupportedOperationException` for GetPublicKey on keys without a
//!   public key), with AWS's message form
//!   `"<key ARN> key usage is SIGN_VERIFY which is not valid for Encrypt."`.

use crate::api::error::KmsError;
use crate::api::types::{CreateKeyRequest, CustomerMasterKeySpec};
pub use crate::api::types::{
    EncryptionAlgorithmSpec as EncryptionAlgorithm, KeySpec, KeyUsageType as KeyUsage,
    MacAlgorithmSpec, SigningAlgorithmSpec as SigningAlgorithm,
};
use crate::keys::{KeyRecord, Operation};

/// The five columns of the key type table (plus ML-KEM keys, which the
/// seed's table predates: they support only GetPublicKey, Encapsulate and
/// Decapsulate besides the management operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClass {
    Symmetric,
    Hmac,
    AsymmetricEncrypt,
    AsymmetricSign,
    AsymmetricAgreement,
    Kem,
}

impl KeySpec {
    /// The key specs kms-core can create (the model's minus SM2).
    pub const SUPPORTED: [KeySpec; 19] = [
        KeySpec::SymmetricDefault,
        KeySpec::Rsa2048,
        KeySpec::Rsa3072,
        KeySpec::Rsa4096,
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistP521,
        KeySpec::EccSecgP256k1,
        KeySpec::EccNistEdwards25519,
        KeySpec::Hmac224,
        KeySpec::Hmac256,
        KeySpec::Hmac384,
        KeySpec::Hmac512,
        KeySpec::MlDsa44,
        KeySpec::MlDsa65,
        KeySpec::MlDsa87,
        KeySpec::MlKem512,
        KeySpec::MlKem768,
        KeySpec::MlKem1024,
    ];

    /// The usages AWS allows for this spec; the first is not a default
    /// (AWS's default usage is always ENCRYPT_DECRYPT).
    pub fn usages(self) -> &'static [KeyUsage] {
        use KeySpec::*;
        use KeyUsage as U;
        match self {
            SymmetricDefault => &[U::EncryptDecrypt],
            Rsa2048 | Rsa3072 | Rsa4096 => &[U::EncryptDecrypt, U::SignVerify],
            EccNistP256 | EccNistP384 | EccNistP521 => &[U::SignVerify, U::KeyAgreement],
            EccSecgP256k1 | EccNistEdwards25519 | MlDsa44 | MlDsa65 | MlDsa87 => &[U::SignVerify],
            Hmac224 | Hmac256 | Hmac384 | Hmac512 => &[U::GenerateVerifyMac],
            MlKem512 | MlKem768 | MlKem1024 => &[U::EncapsulateDecapsulate],
            Sm2 => &[],
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096)
    }

    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512
        )
    }

    /// RSA modulus length in bytes.
    pub fn rsa_bytes(self) -> Option<usize> {
        match self {
            KeySpec::Rsa2048 => Some(256),
            KeySpec::Rsa3072 => Some(384),
            KeySpec::Rsa4096 => Some(512),
            _ => None,
        }
    }

    /// Whether CustomerMasterKeySpec (deprecated, smaller enum) has it.
    pub fn in_customer_master_key_spec(self) -> bool {
        !matches!(
            self,
            KeySpec::EccNistEdwards25519
                | KeySpec::MlDsa44
                | KeySpec::MlDsa65
                | KeySpec::MlDsa87
                | KeySpec::MlKem512
                | KeySpec::MlKem768
                | KeySpec::MlKem1024
        )
    }

    /// Material generation is slow enough to run off the async runtime.
    pub fn slow_to_generate(self) -> bool {
        self.is_rsa()
    }

    pub fn encryption_algorithms(self, usage: KeyUsage) -> &'static [EncryptionAlgorithm] {
        use EncryptionAlgorithm as E;
        match (self, usage) {
            (KeySpec::SymmetricDefault, _) => &[E::SymmetricDefault],
            (s, KeyUsage::EncryptDecrypt) if s.is_rsa() => &[E::RsaesOaepSha1, E::RsaesOaepSha256],
            _ => &[],
        }
    }

    pub fn signing_algorithms(self, usage: KeyUsage) -> &'static [SigningAlgorithm] {
        use SigningAlgorithm as S;
        if usage != KeyUsage::SignVerify {
            return &[];
        }
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &[
                S::RsassaPssSha256,
                S::RsassaPssSha384,
                S::RsassaPssSha512,
                S::RsassaPkcs1V15Sha256,
                S::RsassaPkcs1V15Sha384,
                S::RsassaPkcs1V15Sha512,
            ],
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => &[S::EcdsaSha256],
            KeySpec::EccNistP384 => &[S::EcdsaSha384],
            KeySpec::EccNistP521 => &[S::EcdsaSha512],
            KeySpec::EccNistEdwards25519 => &[S::Ed25519Sha512, S::Ed25519PhSha512],
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => &[S::MlDsaShake256],
            _ => &[],
        }
    }

    pub fn mac_algorithm(self) -> Option<MacAlgorithmSpec> {
        match self {
            KeySpec::Hmac224 => Some(MacAlgorithmSpec::HmacSha224),
            KeySpec::Hmac256 => Some(MacAlgorithmSpec::HmacSha256),
            KeySpec::Hmac384 => Some(MacAlgorithmSpec::HmacSha384),
            KeySpec::Hmac512 => Some(MacAlgorithmSpec::HmacSha512),
            _ => None,
        }
    }

    /// HMAC key length in bytes (the spec's bit size).
    pub fn hmac_key_len(self) -> Option<usize> {
        match self {
            KeySpec::Hmac224 => Some(28),
            KeySpec::Hmac256 => Some(32),
            KeySpec::Hmac384 => Some(48),
            KeySpec::Hmac512 => Some(64),
            _ => None,
        }
    }
}

impl EncryptionAlgorithm {
    /// The largest plaintext RSAES-OAEP takes for a modulus of `k` bytes
    /// (`k - 2·hLen - 2`), exactly the seed's table: RSA_2048 → 214 / 190,
    /// RSA_3072 → 342 / 318, RSA_4096 → 470 / 446 bytes.
    pub fn max_plaintext(self, spec: KeySpec) -> Option<usize> {
        let k = spec.rsa_bytes()?;
        match self {
            EncryptionAlgorithm::SymmetricDefault | EncryptionAlgorithm::Sm2pke => None,
            EncryptionAlgorithm::RsaesOaepSha1 => Some(k - 2 * 20 - 2),
            EncryptionAlgorithm::RsaesOaepSha256 => Some(k - 2 * 32 - 2),
        }
    }
}

impl SigningAlgorithm {
    /// The digest length a `MessageType: DIGEST` message must have; `None`
    /// when the algorithm does not take a digest.
    pub fn digest_len(self) -> Option<usize> {
        use SigningAlgorithm::*;
        match self {
            RsassaPssSha256 | RsassaPkcs1V15Sha256 | EcdsaSha256 => Some(32),
            RsassaPssSha384 | RsassaPkcs1V15Sha384 | EcdsaSha384 => Some(48),
            RsassaPssSha512 | RsassaPkcs1V15Sha512 | EcdsaSha512 | Ed25519PhSha512 => Some(64),
            MlDsaShake256 | Ed25519Sha512 | Sm2dsa => None,
        }
    }
}

/// The model's `DataKeyPairSpec` minus SM2.
pub const DATA_KEY_PAIR_SPECS: [KeySpec; 11] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EccNistP256,
    KeySpec::EccNistP384,
    KeySpec::EccNistP521,
    KeySpec::EccSecgP256k1,
    KeySpec::EccNistEdwards25519,
    KeySpec::MlKem512,
    KeySpec::MlKem768,
    KeySpec::MlKem1024,
];

fn sm2_refused(what: &str) -> KmsError {
    KmsError::UnsupportedOperation(format!(
        "{what} SM2 is available only in the AWS China Regions; kms-core does not support SM2 keys."
    ))
}

/// The `KeySpec` (or deprecated `CustomerMasterKeySpec`) and `KeyUsage` of
/// a CreateKey request, validated like AWS: the spec defaults to
/// SYMMETRIC_DEFAULT, the usage to ENCRYPT_DECRYPT where the spec allows it
/// (elsewhere a KeyUsage is required), a usage the spec does not support is a
/// `ValidationException`, both spec fields at once too.
pub fn parse_create(req: &CreateKeyRequest) -> Result<(KeySpec, KeyUsage), KmsError> {
    let cmk_spec = req
        .customer_master_key_spec
        .map(|c: CustomerMasterKeySpec| c.as_str());
    if req.key_spec.is_some() && cmk_spec.is_some() {
        return Err(KmsError::Validation(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.".into(),
        ));
    }
    let spec = match (req.key_spec, cmk_spec) {
        (Some(s), _) => s,
        (None, Some(name)) => KeySpec::parse(name).ok_or_else(|| {
            KmsError::Validation(format!("KeySpec {name} is not a valid key spec."))
        })?,
        (None, None) => KeySpec::SymmetricDefault,
    };
    if spec == KeySpec::Sm2 {
        return Err(sm2_refused("KeySpec"));
    }
    let usage = match req.key_usage {
        Some(u) => u,
        // The default, ENCRYPT_DECRYPT, fits symmetric and RSA keys only.
        None if spec.usages().contains(&KeyUsage::EncryptDecrypt) => KeyUsage::EncryptDecrypt,
        None => {
            return Err(KmsError::Validation(
                "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.".into(),
            ))
        }
    };
    if !spec.usages().contains(&usage) {
        return Err(KmsError::Validation(format!(
            "KeyUsage {usage} is not compatible with KeySpec {spec}"
        )));
    }
    Ok((spec, usage))
}

/// The `KeyPairSpec` of GenerateDataKeyPair(WithoutPlaintext).
pub fn parse_data_key_pair_spec(name: &str) -> Result<KeySpec, KmsError> {
    if name == "SM2" {
        return Err(sm2_refused("KeyPairSpec"));
    }
    KeySpec::parse(name)
        .filter(|s| DATA_KEY_PAIR_SPECS.contains(s))
        .ok_or_else(|| KmsError::Validation(format!("KeyPairSpec {name} is not valid.")))
}

/// Spec and usage of a stored key.
pub fn of_record(r: &KeyRecord) -> (KeySpec, KeyUsage) {
    (r.key_spec, r.key_usage)
}

pub fn class(spec: KeySpec, usage: KeyUsage) -> KeyClass {
    match (spec, usage) {
        (KeySpec::SymmetricDefault, _) => KeyClass::Symmetric,
        (s, _) if s.is_hmac() => KeyClass::Hmac,
        (_, KeyUsage::EncryptDecrypt) => KeyClass::AsymmetricEncrypt,
        (_, KeyUsage::SignVerify) => KeyClass::AsymmetricSign,
        (_, KeyUsage::KeyAgreement) => KeyClass::AsymmetricAgreement,
        (_, KeyUsage::EncapsulateDecapsulate) => KeyClass::Kem,
        (_, KeyUsage::GenerateVerifyMac) => KeyClass::Hmac,
    }
}

/// Whether a key of this class is symmetric encryption (SYMMETRIC_DEFAULT).
pub fn is_symmetric(r: &KeyRecord) -> bool {
    of_record(r).0 == KeySpec::SymmetricDefault
}

/// What the key type table says about `op` on a key of `class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Yes,
    /// `InvalidKeyUsageException` naming the key usage.
    WrongUsage,
    /// `InvalidKeyUsageException` naming the key spec (right usage, wrong
    /// kind of key: e.g. GenerateDataKey on an RSA ENCRYPT_DECRYPT key).
    WrongSpec,
    /// `UnsupportedOperationException` (GetPublicKey on a key without a
    /// public key).
    Unsupported,
}

/// The key type table.
pub fn cell(class: KeyClass, op: Operation) -> Cell {
    use KeyClass as C;
    use Operation as O;
    let only = |ok: &[KeyClass]| {
        if ok.contains(&class) {
            Cell::Yes
        } else {
            Cell::WrongUsage
        }
    };
    match op {
        O::Encrypt | O::Decrypt | O::ReEncrypt => only(&[C::Symmetric, C::AsymmetricEncrypt]),
        O::GenerateDataKey
        | O::GenerateDataKeyWithoutPlaintext
        | O::GenerateDataKeyPair
        | O::GenerateDataKeyPairWithoutPlaintext => match class {
            C::Symmetric => Cell::Yes,
            C::AsymmetricEncrypt => Cell::WrongSpec,
            _ => Cell::WrongUsage,
        },
        O::GenerateMac | O::VerifyMac => only(&[C::Hmac]),
        O::Sign | O::Verify => only(&[C::AsymmetricSign]),
        O::DeriveSharedSecret => only(&[C::AsymmetricAgreement]),
        O::Encapsulate | O::Decapsulate => only(&[C::Kem]),
        O::GetPublicKey => match class {
            C::Symmetric | C::Hmac => Cell::Unsupported,
            _ => Cell::Yes,
        },
        _ => Cell::Yes,
    }
}

/// [`cell`] for a stored key, as the AWS error.
pub fn check_usage(r: &KeyRecord, op: Operation) -> Result<(), KmsError> {
    let (spec, usage) = of_record(r);
    match cell(class(spec, usage), op) {
        Cell::Yes => Ok(()),
        Cell::WrongUsage => Err(KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {}.",
            r.arn,
            usage.as_str(),
            op.name()
        ))),
        Cell::WrongSpec => Err(KmsError::InvalidKeyUsage(format!(
            "{} key spec is {} which is not valid for {}.",
            r.arn,
            spec.as_str(),
            op.name()
        ))),
        Cell::Unsupported => Err(KmsError::UnsupportedOperation(format!(
            "{} key spec is {} which is not valid for {}: only asymmetric KMS keys have a public key.",
            r.arn,
            spec.as_str(),
            op.name()
        ))),
    }
}

/// UpdateAlias: "the current KMS key and the new KMS key must be the same
/// type (both symmetric or both asymmetric or both HMAC) and they must have
/// the same key usage".
pub fn alias_compatible(current: &KeyRecord, new: &KeyRecord) -> Result<(), KmsError> {
    let family = |r: &KeyRecord| {
        let (spec, usage) = of_record(r);
        let kind = match class(spec, usage) {
            KeyClass::Symmetric => "symmetric",
            KeyClass::Hmac => "HMAC",
            _ => "asymmetric",
        };
        (kind, usage)
    };
    let (a, b) = (family(current), family(new));
    if a == b {
        return Ok(());
    }
    Err(KmsError::Validation(format!(
        "The alias cannot point to {} ({} {} key): its current key {} is a {} {} key; both keys must be of the same type (symmetric, asymmetric or HMAC) and key usage.",
        new.arn,
        b.0,
        b.1.as_str(),
        current.arn,
        a.0,
        a.1.as_str()
    )))
}

/// The error for an algorithm the key's spec does not support.
pub fn incompatible_algorithm(algorithm: &str, spec: KeySpec) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "Algorithm {algorithm} is incompatible with key spec {}.",
        spec.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn supported_specs_are_the_model_minus_sm2() {
        let mut ours: Vec<&str> = KeySpec::SUPPORTED.iter().map(|s| s.as_str()).collect();
        let mut model: Vec<&str> = KeySpec::ALL
            .iter()
            .filter(|s| **s != KeySpec::Sm2)
            .map(|s| s.as_str())
            .collect();
        ours.sort();
        model.sort();
        assert_eq!(ours, model);
        for p in DATA_KEY_PAIR_SPECS {
            assert!(crate::api::types::DataKeyPairSpec::parse(p.as_str()).is_some());
        }
        for s in KeySpec::SUPPORTED {
            assert_eq!(
                CustomerMasterKeySpec::parse(s.as_str()).is_some(),
                s.in_customer_master_key_spec()
            );
        }
        for m in MacAlgorithmSpec::ALL {
            assert!(KeySpec::ALL.iter().any(|s| s.mac_algorithm() == Some(*m)));
        }
    }

    #[test]
    fn oaep_limits_are_the_seed_table() {
        use EncryptionAlgorithm::*;
        let want = [
            (KeySpec::Rsa2048, 214, 190),
            (KeySpec::Rsa3072, 342, 318),
            (KeySpec::Rsa4096, 470, 446),
        ];
        for (spec, sha1, sha256) in want {
            assert_eq!(RsaesOaepSha1.max_plaintext(spec), Some(sha1));
            assert_eq!(RsaesOaepSha256.max_plaintext(spec), Some(sha256));
        }
    }

    #[test]
    fn create_combinations() {
        let req = |spec: Option<&str>, usage: Option<&str>| {
            let mut b = json!({});
            if let Some(s) = spec {
                b["KeySpec"] = json!(s);
            }
            if let Some(u) = usage {
                b["KeyUsage"] = json!(u);
            }
            parse_create(&serde_json::from_value(b).unwrap())
        };
        assert_eq!(
            req(None, None).unwrap(),
            (KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt)
        );
        let mut ok = 0;
        for spec in KeySpec::SUPPORTED {
            for usage in KeyUsage::ALL.iter().copied() {
                let r = req(Some(spec.as_str()), Some(usage.as_str()));
                if spec.usages().contains(&usage) {
                    assert_eq!(r.unwrap(), (spec, usage));
                    ok += 1;
                } else {
                    assert_eq!(
                        r.unwrap_err(),
                        KmsError::Validation(format!(
                            "KeyUsage {} is not compatible with KeySpec {}",
                            usage.as_str(),
                            spec.as_str()
                        ))
                    );
                }
            }
        }
        assert_eq!(ok, 1 + 3 * 2 + 3 * 2 + 5 + 4 + 3);
        assert!(matches!(
            req(Some("SM2"), Some("SIGN_VERIFY")),
            Err(KmsError::UnsupportedOperation(_))
        ));
        // ECC keys need a KeyUsage (the default does not fit).
        assert_eq!(
            req(Some("ECC_NIST_P256"), None).unwrap_err().message(),
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
        );
        let both = json!({"KeySpec": "RSA_2048", "CustomerMasterKeySpec": "RSA_2048"});
        assert!(matches!(
            parse_create(&serde_json::from_value(both).unwrap()),
            Err(KmsError::Validation(_))
        ));
    }

    #[test]
    fn table_cells() {
        use KeyClass as C;
        use Operation as O;
        assert_eq!(cell(C::Symmetric, O::Sign), Cell::WrongUsage);
        assert_eq!(
            cell(C::AsymmetricEncrypt, O::GenerateDataKey),
            Cell::WrongSpec
        );
        assert_eq!(cell(C::Hmac, O::GetPublicKey), Cell::Unsupported);
        assert_eq!(cell(C::Kem, O::GetPublicKey), Cell::Yes);
        assert_eq!(
            cell(C::AsymmetricAgreement, O::DeriveSharedSecret),
            Cell::Yes
        );
        assert_eq!(
            cell(C::AsymmetricSign, O::DeriveSharedSecret),
            Cell::WrongUsage
        );
        assert_eq!(cell(C::Hmac, O::GenerateMac), Cell::Yes);
        assert_eq!(cell(C::AsymmetricEncrypt, O::Decrypt), Cell::Yes);
        assert_eq!(cell(C::AsymmetricSign, O::DescribeKey), Cell::Yes);
    }
}
