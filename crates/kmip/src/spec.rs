//! The tags and enumerations of KMIP 1.4 (§9.1.3) this client uses.

use crate::ttlv::Tag;

/// Tags (KMIP 1.4 §9.1.3.1).
pub mod tag {
    use super::Tag;
    pub const ATTRIBUTE: Tag = Tag(0x420008);
    pub const ATTRIBUTE_INDEX: Tag = Tag(0x420009);
    pub const ATTRIBUTE_NAME: Tag = Tag(0x42000A);
    pub const ATTRIBUTE_VALUE: Tag = Tag(0x42000B);
    pub const BATCH_COUNT: Tag = Tag(0x42000D);
    pub const BATCH_ITEM: Tag = Tag(0x42000F);
    pub const BLOCK_CIPHER_MODE: Tag = Tag(0x420011);
    pub const COMPROMISE_OCCURRENCE_DATE: Tag = Tag(0x420021);
    pub const CRYPTOGRAPHIC_ALGORITHM: Tag = Tag(0x420028);
    pub const CRYPTOGRAPHIC_LENGTH: Tag = Tag(0x42002A);
    pub const CRYPTOGRAPHIC_PARAMETERS: Tag = Tag(0x42002B);
    pub const CRYPTOGRAPHIC_USAGE_MASK: Tag = Tag(0x42002C);
    pub const IV_COUNTER_NONCE: Tag = Tag(0x42003D);
    pub const KEY_BLOCK: Tag = Tag(0x420040);
    pub const KEY_MATERIAL: Tag = Tag(0x420043);
    pub const KEY_VALUE: Tag = Tag(0x420045);
    pub const MAXIMUM_ITEMS: Tag = Tag(0x42004F);
    pub const MAXIMUM_RESPONSE_SIZE: Tag = Tag(0x420050);
    pub const NAME: Tag = Tag(0x420053);
    pub const NAME_TYPE: Tag = Tag(0x420054);
    pub const NAME_VALUE: Tag = Tag(0x420055);
    pub const OBJECT_TYPE: Tag = Tag(0x420057);
    pub const OPERATION: Tag = Tag(0x42005C);
    pub const PROTOCOL_VERSION: Tag = Tag(0x420069);
    pub const PROTOCOL_VERSION_MAJOR: Tag = Tag(0x42006A);
    pub const PROTOCOL_VERSION_MINOR: Tag = Tag(0x42006B);
    pub const REQUEST_HEADER: Tag = Tag(0x420077);
    pub const REQUEST_MESSAGE: Tag = Tag(0x420078);
    pub const REQUEST_PAYLOAD: Tag = Tag(0x420079);
    pub const RESPONSE_HEADER: Tag = Tag(0x42007A);
    pub const RESPONSE_MESSAGE: Tag = Tag(0x42007B);
    pub const RESPONSE_PAYLOAD: Tag = Tag(0x42007C);
    pub const RESULT_MESSAGE: Tag = Tag(0x42007D);
    pub const RESULT_REASON: Tag = Tag(0x42007E);
    pub const RESULT_STATUS: Tag = Tag(0x42007F);
    pub const REVOCATION_MESSAGE: Tag = Tag(0x420080);
    pub const REVOCATION_REASON: Tag = Tag(0x420081);
    pub const REVOCATION_REASON_CODE: Tag = Tag(0x420082);
    pub const STATE: Tag = Tag(0x42008D);
    pub const SYMMETRIC_KEY: Tag = Tag(0x42008F);
    pub const TEMPLATE_ATTRIBUTE: Tag = Tag(0x420091);
    pub const TIME_STAMP: Tag = Tag(0x420092);
    pub const UNIQUE_BATCH_ITEM_ID: Tag = Tag(0x420093);
    pub const UNIQUE_IDENTIFIER: Tag = Tag(0x420094);
    pub const DATA: Tag = Tag(0x4200C2);
    pub const TAG_LENGTH: Tag = Tag(0x4200CE);
    pub const AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA: Tag = Tag(0x4200FE);
    pub const AUTHENTICATED_ENCRYPTION_TAG: Tag = Tag(0x4200FF);
}

/// Attribute names (KMIP 1.4 §3), as they travel in Attribute Name.
pub mod attr {
    pub const CRYPTOGRAPHIC_ALGORITHM: &str = "Cryptographic Algorithm";
    pub const CRYPTOGRAPHIC_LENGTH: &str = "Cryptographic Length";
    pub const CRYPTOGRAPHIC_USAGE_MASK: &str = "Cryptographic Usage Mask";
    pub const NAME: &str = "Name";
    pub const OBJECT_TYPE: &str = "Object Type";
    pub const STATE: &str = "State";
}

macro_rules! kmip_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $value:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+,
            /// A value this client does not name.
            Other(u32),
        }

        impl $name {
            pub fn from_u32(v: u32) -> $name {
                match v {
                    $($value => $name::$variant,)+
                    other => $name::Other(other),
                }
            }

            pub fn to_u32(self) -> u32 {
                match self {
                    $($name::$variant => $value,)+
                    $name::Other(v) => v,
                }
            }
        }
    };
}

kmip_enum!(
    /// Operation (§9.1.3.2.27).
    Operation {
        Create = 0x01,
        Locate = 0x08,
        Get = 0x0A,
        GetAttributes = 0x0B,
        Activate = 0x12,
        Revoke = 0x13,
        Destroy = 0x14,
        Query = 0x18,
        DiscoverVersions = 0x1E,
        Encrypt = 0x1F,
        Decrypt = 0x20,
    }
);

kmip_enum!(
    /// Result Status (§9.1.3.2.28).
    ResultStatus {
        Success = 0,
        OperationFailed = 1,
        OperationPending = 2,
        OperationUndone = 3,
    }
);

kmip_enum!(
    /// Result Reason (§9.1.3.2.29).
    ResultReason {
        ItemNotFound = 0x01,
        ResponseTooLarge = 0x02,
        AuthenticationNotSuccessful = 0x03,
        InvalidMessage = 0x04,
        OperationNotSupported = 0x05,
        MissingData = 0x06,
        InvalidField = 0x07,
        FeatureNotSupported = 0x08,
        OperationCanceledByRequester = 0x09,
        CryptographicFailure = 0x0A,
        IllegalOperation = 0x0B,
        PermissionDenied = 0x0C,
        ObjectArchived = 0x0D,
        IndexOutOfBounds = 0x0E,
        ApplicationNamespaceNotSupported = 0x0F,
        KeyFormatTypeNotSupported = 0x10,
        KeyCompressionTypeNotSupported = 0x11,
        EncodingOptionError = 0x12,
        KeyValueNotPresent = 0x13,
        AttestationRequired = 0x14,
        AttestationFailed = 0x15,
        Sensitive = 0x16,
        NotExtractable = 0x17,
        ObjectAlreadyExists = 0x18,
        GeneralFailure = 0x100,
    }
);

kmip_enum!(
    /// Object Type (§9.1.3.2.12).
    ObjectType {
        Certificate = 0x01,
        SymmetricKey = 0x02,
        PublicKey = 0x03,
        PrivateKey = 0x04,
        SplitKey = 0x05,
        Template = 0x06,
        SecretData = 0x07,
        OpaqueObject = 0x08,
    }
);

kmip_enum!(
    /// Cryptographic Algorithm (§9.1.3.2.13).
    CryptographicAlgorithm {
        Des = 0x01,
        TripleDes = 0x02,
        Aes = 0x03,
        Rsa = 0x04,
    }
);

kmip_enum!(
    /// Block Cipher Mode (§9.1.3.2.14).
    BlockCipherMode {
        Cbc = 0x01,
        Ecb = 0x02,
        Ctr = 0x06,
        Ccm = 0x08,
        Gcm = 0x09,
    }
);

kmip_enum!(
    /// State (§9.1.3.2.18).
    State {
        PreActive = 0x01,
        Active = 0x02,
        Deactivated = 0x03,
        Compromised = 0x04,
        Destroyed = 0x05,
        DestroyedCompromised = 0x06,
    }
);

kmip_enum!(
    /// Name Type (§9.1.3.2.11).
    NameType {
        UninterpretedTextString = 0x01,
        Uri = 0x02,
    }
);

kmip_enum!(
    /// Revocation Reason Code (§9.1.3.2.19).
    RevocationReasonCode {
        Unspecified = 0x01,
        KeyCompromise = 0x02,
        CaCompromise = 0x03,
        AffiliationChanged = 0x04,
        Superseded = 0x05,
        CessationOfOperation = 0x06,
        PrivilegeWithdrawn = 0x07,
    }
);

/// Cryptographic Usage Mask bits (§9.1.3.3.1).
pub mod usage {
    pub const SIGN: i32 = 0x0000_0001;
    pub const VERIFY: i32 = 0x0000_0002;
    pub const ENCRYPT: i32 = 0x0000_0004;
    pub const DECRYPT: i32 = 0x0000_0008;
    pub const WRAP_KEY: i32 = 0x0000_0010;
    pub const UNWRAP_KEY: i32 = 0x0000_0020;
    pub const EXPORT: i32 = 0x0000_0040;
    pub const MAC_GENERATE: i32 = 0x0000_0080;
    pub const MAC_VERIFY: i32 = 0x0000_0100;
}
