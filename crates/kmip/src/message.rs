//! Typed KMIP 1.x request and response messages for the operations this
//! client uses, built on [`crate::ttlv`]. Sans-IO: bytes in, bytes out.
//!
//! Every request carries exactly one batch item; the response must carry
//! exactly one, for the same operation.

use crate::error::Error;
use crate::spec::{
    attr, tag, BlockCipherMode, CryptographicAlgorithm, NameType, ObjectType, Operation,
    ResultReason, ResultStatus, RevocationReasonCode, State,
};
use crate::ttlv::{Item, Value};
use std::fmt;
use zeroize::Zeroizing;

/// A KMIP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    pub major: i32,
    pub minor: i32,
}

impl ProtocolVersion {
    pub const V1_1: ProtocolVersion = ProtocolVersion::new(1, 1);
    pub const V1_2: ProtocolVersion = ProtocolVersion::new(1, 2);
    pub const V1_4: ProtocolVersion = ProtocolVersion::new(1, 4);

    pub const fn new(major: i32, minor: i32) -> ProtocolVersion {
        ProtocolVersion { major, minor }
    }

    fn to_item(self) -> Item {
        Item::structure(
            tag::PROTOCOL_VERSION,
            vec![
                Item::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(self.major)),
                Item::new(tag::PROTOCOL_VERSION_MINOR, Value::Integer(self.minor)),
            ],
        )
    }

    fn from_item(item: &Item) -> Result<ProtocolVersion, Error> {
        Ok(ProtocolVersion {
            major: int(item, tag::PROTOCOL_VERSION_MAJOR)?,
            minor: int(item, tag::PROTOCOL_VERSION_MINOR)?,
        })
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for ProtocolVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once('.')
            .ok_or_else(|| format!("{s:?} is not MAJOR.MINOR"))?;
        let p = |x: &str| {
            x.parse::<i32>()
                .map_err(|_| format!("{s:?} is not MAJOR.MINOR"))
        };
        Ok(ProtocolVersion::new(p(a)?, p(b)?))
    }
}

/// A KMIP 1.x attribute: name, optional index and a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub index: Option<i32>,
    pub value: Value,
}

impl Attribute {
    pub fn new(name: &str, value: Value) -> Attribute {
        Attribute {
            name: name.to_owned(),
            index: None,
            value,
        }
    }

    pub fn cryptographic_algorithm(a: CryptographicAlgorithm) -> Attribute {
        Attribute::new(
            attr::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(a.to_u32()),
        )
    }

    pub fn cryptographic_length(bits: i32) -> Attribute {
        Attribute::new(attr::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits))
    }

    pub fn usage_mask(mask: i32) -> Attribute {
        Attribute::new(attr::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(mask))
    }

    pub fn object_type(t: ObjectType) -> Attribute {
        Attribute::new(attr::OBJECT_TYPE, Value::Enumeration(t.to_u32()))
    }

    /// A Name attribute of type Uninterpreted Text String.
    pub fn name(text: &str) -> Attribute {
        Attribute::new(
            attr::NAME,
            Value::Structure(vec![
                Item::new(tag::NAME_VALUE, Value::TextString(text.to_owned())),
                Item::new(
                    tag::NAME_TYPE,
                    Value::Enumeration(NameType::UninterpretedTextString.to_u32()),
                ),
            ]),
        )
    }

    fn to_item(&self) -> Item {
        let mut items = vec![Item::new(
            tag::ATTRIBUTE_NAME,
            Value::TextString(self.name.clone()),
        )];
        if let Some(i) = self.index {
            items.push(Item::new(tag::ATTRIBUTE_INDEX, Value::Integer(i)));
        }
        items.push(Item::new(tag::ATTRIBUTE_VALUE, self.value.clone()));
        Item::structure(tag::ATTRIBUTE, items)
    }

    fn from_item(item: &Item) -> Result<Attribute, Error> {
        Ok(Attribute {
            name: text(item, tag::ATTRIBUTE_NAME)?.to_owned(),
            index: item.child(tag::ATTRIBUTE_INDEX).and_then(Item::as_i32),
            value: required(item, tag::ATTRIBUTE_VALUE)?.value.clone(),
        })
    }

    /// The text of a Name attribute.
    pub fn name_value(&self) -> Option<&str> {
        match &self.value {
            Value::Structure(items) => items
                .iter()
                .find(|i| i.tag == tag::NAME_VALUE)
                .and_then(Item::as_text),
            _ => None,
        }
    }
}

/// The Cryptographic Parameters for AES-GCM with a tag of `tag_length`
/// bytes (the order of fields follows §2.1.4).
fn gcm_parameters(tag_length: i32) -> Item {
    Item::structure(
        tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![
            Item::new(
                tag::BLOCK_CIPHER_MODE,
                Value::Enumeration(BlockCipherMode::Gcm.to_u32()),
            ),
            Item::new(
                tag::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(CryptographicAlgorithm::Aes.to_u32()),
            ),
            Item::new(tag::TAG_LENGTH, Value::Integer(tag_length)),
        ],
    )
}

/// AES-GCM tag length this client asks for (bytes).
pub const GCM_TAG_LEN: usize = 16;

/// A request (one batch item). Its `Debug` names the operation and key
/// only: Encrypt carries plaintext.
#[derive(Clone)]
pub enum Request<'a> {
    DiscoverVersions {
        versions: Vec<ProtocolVersion>,
    },
    Create {
        object_type: ObjectType,
        attributes: Vec<Attribute>,
    },
    Locate {
        maximum_items: Option<i32>,
        attributes: Vec<Attribute>,
    },
    GetAttributes {
        unique_identifier: &'a str,
        names: Vec<&'a str>,
    },
    Activate {
        unique_identifier: &'a str,
    },
    /// Get (tests only: reads a symmetric key's material).
    Get {
        unique_identifier: &'a str,
    },
    Revoke {
        unique_identifier: &'a str,
        reason: RevocationReasonCode,
        message: Option<&'a str>,
    },
    Destroy {
        unique_identifier: &'a str,
    },
    /// AES-GCM encryption (KMIP 1.4: AAD and tag length).
    Encrypt {
        unique_identifier: &'a str,
        data: &'a [u8],
        iv: &'a [u8],
        aad: &'a [u8],
    },
    /// AES-GCM decryption (KMIP 1.4: AAD and tag).
    Decrypt {
        unique_identifier: &'a str,
        data: &'a [u8],
        iv: &'a [u8],
        aad: &'a [u8],
        tag: &'a [u8],
    },
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uid = match self {
            Request::GetAttributes {
                unique_identifier, ..
            }
            | Request::Activate { unique_identifier }
            | Request::Get { unique_identifier }
            | Request::Revoke {
                unique_identifier, ..
            }
            | Request::Destroy { unique_identifier }
            | Request::Encrypt {
                unique_identifier, ..
            }
            | Request::Decrypt {
                unique_identifier, ..
            } => Some(*unique_identifier),
            _ => None,
        };
        write!(f, "Request({:?}, uid {uid:?})", self.operation())
    }
}

impl Request<'_> {
    pub fn operation(&self) -> Operation {
        match self {
            Request::DiscoverVersions { .. } => Operation::DiscoverVersions,
            Request::Create { .. } => Operation::Create,
            Request::Locate { .. } => Operation::Locate,
            Request::GetAttributes { .. } => Operation::GetAttributes,
            Request::Activate { .. } => Operation::Activate,
            Request::Get { .. } => Operation::Get,
            Request::Revoke { .. } => Operation::Revoke,
            Request::Destroy { .. } => Operation::Destroy,
            Request::Encrypt { .. } => Operation::Encrypt,
            Request::Decrypt { .. } => Operation::Decrypt,
        }
    }

    /// Whether sending it twice is harmless (the transport retries these
    /// once on a connection the server closed while idle).
    pub fn is_idempotent(&self) -> bool {
        !matches!(self, Request::Create { .. })
    }

    fn payload(&self) -> Vec<Item> {
        let uid = |u: &str| Item::new(tag::UNIQUE_IDENTIFIER, Value::TextString(u.to_owned()));
        match self {
            Request::DiscoverVersions { versions } => {
                versions.iter().map(|v| v.to_item()).collect()
            }
            Request::Create {
                object_type,
                attributes,
            } => vec![
                Item::new(tag::OBJECT_TYPE, Value::Enumeration(object_type.to_u32())),
                Item::structure(
                    tag::TEMPLATE_ATTRIBUTE,
                    attributes.iter().map(Attribute::to_item).collect(),
                ),
            ],
            Request::Locate {
                maximum_items,
                attributes,
            } => {
                let mut v = Vec::new();
                if let Some(m) = maximum_items {
                    v.push(Item::new(tag::MAXIMUM_ITEMS, Value::Integer(*m)));
                }
                v.extend(attributes.iter().map(Attribute::to_item));
                v
            }
            Request::GetAttributes {
                unique_identifier,
                names,
            } => {
                let mut v = vec![uid(unique_identifier)];
                v.extend(
                    names.iter().map(|n| {
                        Item::new(tag::ATTRIBUTE_NAME, Value::TextString((*n).to_owned()))
                    }),
                );
                v
            }
            Request::Activate { unique_identifier }
            | Request::Destroy { unique_identifier }
            | Request::Get { unique_identifier } => vec![uid(unique_identifier)],
            Request::Revoke {
                unique_identifier,
                reason,
                message,
            } => {
                let mut r = vec![Item::new(
                    tag::REVOCATION_REASON_CODE,
                    Value::Enumeration(reason.to_u32()),
                )];
                if let Some(m) = message {
                    r.push(Item::new(
                        tag::REVOCATION_MESSAGE,
                        Value::TextString((*m).to_owned()),
                    ));
                }
                vec![
                    uid(unique_identifier),
                    Item::structure(tag::REVOCATION_REASON, r),
                ]
            }
            Request::Encrypt {
                unique_identifier,
                data,
                iv,
                aad,
            } => vec![
                uid(unique_identifier),
                gcm_parameters(GCM_TAG_LEN as i32),
                Item::new(tag::DATA, Value::bytes(data)),
                Item::new(tag::IV_COUNTER_NONCE, Value::bytes(iv)),
                Item::new(
                    tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                    Value::bytes(aad),
                ),
            ],
            Request::Decrypt {
                unique_identifier,
                data,
                iv,
                aad,
                tag: t,
            } => vec![
                uid(unique_identifier),
                gcm_parameters(GCM_TAG_LEN as i32),
                Item::new(tag::DATA, Value::bytes(data)),
                Item::new(tag::IV_COUNTER_NONCE, Value::bytes(iv)),
                Item::new(
                    tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                    Value::bytes(aad),
                ),
                Item::new(tag::AUTHENTICATED_ENCRYPTION_TAG, Value::bytes(t)),
            ],
        }
    }

    /// The whole Request Message, encoded (zeroized on drop: Encrypt
    /// carries plaintext).
    pub fn encode(
        &self,
        version: ProtocolVersion,
        maximum_response_size: Option<i32>,
    ) -> Zeroizing<Vec<u8>> {
        let mut header = vec![version.to_item()];
        if let Some(m) = maximum_response_size {
            header.push(Item::new(tag::MAXIMUM_RESPONSE_SIZE, Value::Integer(m)));
        }
        header.push(Item::new(tag::BATCH_COUNT, Value::Integer(1)));
        let message = Item::structure(
            tag::REQUEST_MESSAGE,
            vec![
                Item::structure(tag::REQUEST_HEADER, header),
                Item::structure(
                    tag::BATCH_ITEM,
                    vec![
                        Item::new(
                            tag::OPERATION,
                            Value::Enumeration(self.operation().to_u32()),
                        ),
                        Item::structure(tag::REQUEST_PAYLOAD, self.payload()),
                    ],
                ),
            ],
        );
        message.encode()
    }
}

/// The payload of a successful response. `Debug` never shows `data`
/// (plaintext of a Decrypt).
#[derive(Clone, PartialEq, Eq)]
pub enum Response {
    DiscoverVersions(Vec<ProtocolVersion>),
    Create {
        object_type: ObjectType,
        unique_identifier: String,
    },
    Locate {
        unique_identifiers: Vec<String>,
    },
    GetAttributes {
        unique_identifier: String,
        attributes: Vec<Attribute>,
    },
    Activate {
        unique_identifier: String,
    },
    /// A symmetric key's raw material (Get; tests only).
    Get {
        unique_identifier: String,
        key_material: Zeroizing<Vec<u8>>,
    },
    Revoke {
        unique_identifier: String,
    },
    Destroy {
        unique_identifier: String,
    },
    Encrypt {
        unique_identifier: String,
        data: Zeroizing<Vec<u8>>,
        iv: Option<Vec<u8>>,
        tag: Option<Vec<u8>>,
    },
    Decrypt {
        unique_identifier: String,
        data: Zeroizing<Vec<u8>>,
    },
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::DiscoverVersions(v) => f.debug_tuple("DiscoverVersions").field(v).finish(),
            Response::Create {
                object_type,
                unique_identifier,
            } => f
                .debug_struct("Create")
                .field("object_type", object_type)
                .field("unique_identifier", unique_identifier)
                .finish(),
            Response::Locate { unique_identifiers } => f
                .debug_struct("Locate")
                .field("unique_identifiers", unique_identifiers)
                .finish(),
            Response::GetAttributes {
                unique_identifier,
                attributes,
            } => f
                .debug_struct("GetAttributes")
                .field("unique_identifier", unique_identifier)
                .field("attributes", attributes)
                .finish(),
            Response::Activate { unique_identifier }
            | Response::Revoke { unique_identifier }
            | Response::Destroy { unique_identifier } => f
                .debug_struct("Response")
                .field("unique_identifier", unique_identifier)
                .finish(),
            Response::Encrypt {
                unique_identifier,
                data,
                ..
            } => f
                .debug_struct("Encrypt")
                .field("unique_identifier", unique_identifier)
                .field("data_len", &data.len())
                .finish_non_exhaustive(),
            Response::Get {
                unique_identifier, ..
            } => f
                .debug_struct("Get")
                .field("unique_identifier", unique_identifier)
                .finish_non_exhaustive(),
            Response::Decrypt {
                unique_identifier,
                data,
            } => f
                .debug_struct("Decrypt")
                .field("unique_identifier", unique_identifier)
                .field("data_len", &data.len())
                .finish(),
        }
    }
}

/// A decoded Response Message with its one batch item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMessage {
    pub version: ProtocolVersion,
    pub time_stamp: i64,
    pub response: Response,
}

fn malformed(what: impl Into<String>) -> Error {
    Error::Malformed(what.into())
}

fn required(item: &Item, t: crate::ttlv::Tag) -> Result<&Item, Error> {
    item.child(t)
        .ok_or_else(|| malformed(format!("missing {:#08x} in {:#08x}", t.0, item.tag.0)))
}

fn int(item: &Item, t: crate::ttlv::Tag) -> Result<i32, Error> {
    required(item, t)?
        .as_i32()
        .ok_or_else(|| malformed(format!("{:#08x} is not an Integer", t.0)))
}

fn enumeration(item: &Item, t: crate::ttlv::Tag) -> Result<u32, Error> {
    required(item, t)?
        .as_enum()
        .ok_or_else(|| malformed(format!("{:#08x} is not an Enumeration", t.0)))
}

fn text(item: &Item, t: crate::ttlv::Tag) -> Result<&str, Error> {
    required(item, t)?
        .as_text()
        .ok_or_else(|| malformed(format!("{:#08x} is not a Text String", t.0)))
}

fn bytes(item: &Item, t: crate::ttlv::Tag) -> Result<Zeroizing<Vec<u8>>, Error> {
    required(item, t)?
        .as_bytes()
        .map(|b| Zeroizing::new(b.to_vec()))
        .ok_or_else(|| malformed(format!("{:#08x} is not a Byte String", t.0)))
}

/// Decodes a Response Message to the request for `operation`. A batch item
/// whose status is not Success becomes [`Error::Failed`].
pub fn decode_response(input: &[u8], operation: Operation) -> Result<ResponseMessage, Error> {
    let root = Item::decode(input).map_err(|e| malformed(e.to_string()))?;
    if root.tag != tag::RESPONSE_MESSAGE {
        return Err(malformed(format!(
            "expected a Response Message, got tag {:#08x}",
            root.tag.0
        )));
    }
    let header = required(&root, tag::RESPONSE_HEADER)?;
    let version = ProtocolVersion::from_item(required(header, tag::PROTOCOL_VERSION)?)?;
    let time_stamp = required(header, tag::TIME_STAMP)?
        .as_datetime()
        .ok_or_else(|| malformed("Time Stamp is not a Date-Time"))?;
    let count = int(header, tag::BATCH_COUNT)?;
    let items: Vec<&Item> = root.children_with(tag::BATCH_ITEM).collect();
    if count != 1 || items.len() != 1 {
        return Err(malformed(format!(
            "expected one batch item, got {} (count {count})",
            items.len()
        )));
    }
    let item = items[0];
    // Operation is optional in error responses to unparseable requests.
    if let Some(op) = item.child(tag::OPERATION) {
        let got = Operation::from_u32(
            op.as_enum()
                .ok_or_else(|| malformed("Operation is not an Enumeration"))?,
        );
        if got != operation {
            return Err(malformed(format!(
                "response is for {got:?}, request was {operation:?}"
            )));
        }
    }
    let status = ResultStatus::from_u32(enumeration(item, tag::RESULT_STATUS)?);
    if status != ResultStatus::Success {
        return Err(Error::Failed {
            operation,
            status,
            reason: item
                .child(tag::RESULT_REASON)
                .and_then(Item::as_enum)
                .map(ResultReason::from_u32),
            message: item
                .child(tag::RESULT_MESSAGE)
                .and_then(Item::as_text)
                .map(str::to_owned),
        });
    }
    let empty = Item::structure(tag::RESPONSE_PAYLOAD, vec![]);
    let p = item.child(tag::RESPONSE_PAYLOAD).unwrap_or(&empty);
    let uid = || text(p, tag::UNIQUE_IDENTIFIER).map(str::to_owned);
    let response = match operation {
        Operation::DiscoverVersions => Response::DiscoverVersions(
            p.children_with(tag::PROTOCOL_VERSION)
                .map(ProtocolVersion::from_item)
                .collect::<Result<_, _>>()?,
        ),
        Operation::Create => Response::Create {
            object_type: ObjectType::from_u32(enumeration(p, tag::OBJECT_TYPE)?),
            unique_identifier: uid()?,
        },
        Operation::Locate => Response::Locate {
            unique_identifiers: p
                .children_with(tag::UNIQUE_IDENTIFIER)
                .map(|i| {
                    i.as_text()
                        .map(str::to_owned)
                        .ok_or_else(|| malformed("Unique Identifier is not a Text String"))
                })
                .collect::<Result<_, _>>()?,
        },
        Operation::GetAttributes => Response::GetAttributes {
            unique_identifier: uid()?,
            attributes: p
                .children_with(tag::ATTRIBUTE)
                .map(Attribute::from_item)
                .collect::<Result<_, _>>()?,
        },
        Operation::Activate => Response::Activate {
            unique_identifier: uid()?,
        },
        Operation::Get => {
            let material = required(p, tag::SYMMETRIC_KEY)
                .and_then(|k| required(k, tag::KEY_BLOCK))
                .and_then(|b| required(b, tag::KEY_VALUE))
                .and_then(|v| bytes(v, tag::KEY_MATERIAL))?;
            Response::Get {
                unique_identifier: uid()?,
                key_material: material,
            }
        }
        Operation::Revoke => Response::Revoke {
            unique_identifier: uid()?,
        },
        Operation::Destroy => Response::Destroy {
            unique_identifier: uid()?,
        },
        Operation::Encrypt => Response::Encrypt {
            unique_identifier: uid()?,
            data: bytes(p, tag::DATA)?,
            iv: p
                .child(tag::IV_COUNTER_NONCE)
                .and_then(Item::as_bytes)
                .map(<[u8]>::to_vec),
            tag: p
                .child(tag::AUTHENTICATED_ENCRYPTION_TAG)
                .and_then(Item::as_bytes)
                .map(<[u8]>::to_vec),
        },
        Operation::Decrypt => Response::Decrypt {
            unique_identifier: uid()?,
            data: bytes(p, tag::DATA)?,
        },
        other => return Err(malformed(format!("no decoder for {other:?} responses"))),
    };
    Ok(ResponseMessage {
        version,
        time_stamp,
        response,
    })
}

/// Key attributes as [`crate::Client::key_attributes`] reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttributes {
    pub object_type: Option<ObjectType>,
    pub algorithm: Option<CryptographicAlgorithm>,
    pub length: Option<i32>,
    pub usage_mask: Option<i32>,
    pub state: Option<State>,
}

impl KeyAttributes {
    /// The attribute names to ask Get Attributes for.
    pub const NAMES: [&'static str; 5] = [
        attr::OBJECT_TYPE,
        attr::CRYPTOGRAPHIC_ALGORITHM,
        attr::CRYPTOGRAPHIC_LENGTH,
        attr::CRYPTOGRAPHIC_USAGE_MASK,
        attr::STATE,
    ];

    pub fn from_attributes(attributes: &[Attribute]) -> KeyAttributes {
        let find = |n: &str| attributes.iter().find(|a| a.name == n).map(|a| &a.value);
        let as_enum = |v: Option<&Value>| match v {
            Some(Value::Enumeration(e)) => Some(*e),
            _ => None,
        };
        let as_int = |v: Option<&Value>| match v {
            Some(Value::Integer(i)) => Some(*i),
            _ => None,
        };
        KeyAttributes {
            object_type: as_enum(find(attr::OBJECT_TYPE)).map(ObjectType::from_u32),
            algorithm: as_enum(find(attr::CRYPTOGRAPHIC_ALGORITHM))
                .map(CryptographicAlgorithm::from_u32),
            length: as_int(find(attr::CRYPTOGRAPHIC_LENGTH)),
            usage_mask: as_int(find(attr::CRYPTOGRAPHIC_USAGE_MASK)),
            state: as_enum(find(attr::STATE)).map(State::from_u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::usage;

    use crate::ttlv::tests::hex;

    // KMIP Test Cases v1.1 (OASIS), §3.1.1 "Create / Destroy", the Create
    // request: AES-128 symmetric key, usage mask Encrypt|Decrypt, protocol 1.1.
    const TC_1_1_3_1_1_CREATE_REQUEST: &str = "
        42007801 00000120 42007701 00000038 42006901 00000020 42006A02 00000004
        00000001 00000000 42006B02 00000004 00000001 00000000 42000D02 00000004
        00000001 00000000 42000F01 000000D8 42005C05 00000004 00000001 00000000
        42007901 000000C0 42005705 00000004 00000002 00000000 42009101 000000A8
        42000801 00000030 42000A07 00000017 43727970 746F6772 61706869 6320416C
        676F7269 74686D00 42000B05 00000004 00000003 00000000 42000801 00000030
        42000A07 00000014 43727970 746F6772 61706869 63204C65 6E677468 00000000
        42000B02 00000004 00000080 00000000 42000801 00000030 42000A07 00000018
        43727970 746F6772 61706869 63205573 61676520 4D61736B 42000B02 00000004
        0000000C 00000000";

    // Same section, the Create response (time stamp 0x4F9A54E5).
    const TC_1_1_3_1_1_CREATE_RESPONSE: &str = "
        42007B01 000000C0 42007A01 00000048 42006901 00000020 42006A02 00000004
        00000001 00000000 42006B02 00000004 00000001 00000000 42009209 00000008
        00000000 4F9A54E5 42000D02 00000004 00000001 00000000 42000F01 00000068
        42005C05 00000004 00000001 00000000 42007F05 00000004 00000000 00000000
        42007C01 00000040 42005705 00000004 00000002 00000000 42009407 00000024
        66623462 35623963 2D363138 382D3463 36332D38 3134322D 66653963 33323831
        32396663 00000000";

    // KMIP Test Cases v1.1, §3.1.3 "Register / Locate", the Locate request:
    // Object Type = Symmetric Key, Name = "Key1" (uninterpreted text string).
    const TC_1_1_3_1_3_LOCATE_REQUEST: &str = "
        42007801 000000D0 42007701 00000038 42006901 00000020 42006A02 00000004
        00000001 00000000 42006B02 00000004 00000001 00000000 42000D02 00000004
        00000001 00000000 42000F01 00000088 42005C05 00000004 00000008 00000000
        42007901 00000070 42000801 00000028 42000A07 0000000B 4F626A65 63742054
        79706500 00000000 42000B05 00000004 00000002 00000000 42000801 00000038
        42000A07 00000004 4E616D65 00000000 42000B01 00000020 42005507 00000004
        4B657931 00000000 42005405 00000004 00000001 00000000";

    // Same section, the Locate response: one identifier.
    const TC_1_1_3_1_3_LOCATE_RESPONSE: &str = "
        42007B01 000000B0 42007A01 00000048 42006901 00000020 42006A02 00000004
        00000001 00000000 42006B02 00000004 00000001 00000000 42009209 00000008
        00000000 4F9A54E6 42000D02 00000004 00000001 00000000 42000F01 00000058
        42005C05 00000004 00000008 00000000 42007F05 00000004 00000000 00000000
        42007C01 00000030 42009407 00000024 34396131 63613838 2D366265 612D3466
        62322D62 3435302D 37653538 38303263 33303338 00000000";

    #[test]
    fn test_case_3_1_1_create_request_encodes_exactly() {
        let req = Request::Create {
            object_type: ObjectType::SymmetricKey,
            attributes: vec![
                Attribute::cryptographic_algorithm(CryptographicAlgorithm::Aes),
                Attribute::cryptographic_length(128),
                Attribute::usage_mask(usage::ENCRYPT | usage::DECRYPT),
            ],
        };
        let got = req.encode(ProtocolVersion::V1_1, None);
        assert_eq!(got.as_slice(), hex(TC_1_1_3_1_1_CREATE_REQUEST).as_slice());
    }

    #[test]
    fn test_case_3_1_1_create_response_decodes() {
        let m = decode_response(&hex(TC_1_1_3_1_1_CREATE_RESPONSE), Operation::Create).unwrap();
        assert_eq!(m.version, ProtocolVersion::V1_1);
        assert_eq!(m.time_stamp, 0x4F9A54E5);
        assert_eq!(
            m.response,
            Response::Create {
                object_type: ObjectType::SymmetricKey,
                unique_identifier: "fb4b5b9c-6188-4c63-8142-fe9c328129fc".into(),
            }
        );
        // A response for another operation is refused.
        assert!(matches!(
            decode_response(&hex(TC_1_1_3_1_1_CREATE_RESPONSE), Operation::Encrypt),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn test_case_3_1_3_locate_request_encodes_exactly() {
        let req = Request::Locate {
            maximum_items: None,
            attributes: vec![
                Attribute::object_type(ObjectType::SymmetricKey),
                Attribute::name("Key1"),
            ],
        };
        let got = req.encode(ProtocolVersion::V1_1, None);
        assert_eq!(got.as_slice(), hex(TC_1_1_3_1_3_LOCATE_REQUEST).as_slice());
    }

    #[test]
    fn test_case_3_1_3_locate_response_decodes() {
        let m = decode_response(&hex(TC_1_1_3_1_3_LOCATE_RESPONSE), Operation::Locate).unwrap();
        assert_eq!(
            m.response,
            Response::Locate {
                unique_identifiers: vec!["49a1ca88-6bea-4fb2-b450-7e58802c3038".into()]
            }
        );
    }

    fn response(batch_item: Vec<Item>) -> Vec<u8> {
        Item::structure(
            tag::RESPONSE_MESSAGE,
            vec![
                Item::structure(
                    tag::RESPONSE_HEADER,
                    vec![
                        ProtocolVersion::V1_4.to_item(),
                        Item::new(tag::TIME_STAMP, Value::DateTime(1)),
                        Item::new(tag::BATCH_COUNT, Value::Integer(1)),
                    ],
                ),
                Item::structure(tag::BATCH_ITEM, batch_item),
            ],
        )
        .encode()
        .to_vec()
    }

    #[test]
    fn failures_carry_status_reason_and_message() {
        let bytes = response(vec![
            Item::new(
                tag::OPERATION,
                Value::Enumeration(Operation::Decrypt.to_u32()),
            ),
            Item::new(tag::RESULT_STATUS, Value::Enumeration(1)),
            Item::new(tag::RESULT_REASON, Value::Enumeration(0x0A)),
            Item::new(tag::RESULT_MESSAGE, Value::TextString("bad tag".into())),
        ]);
        match decode_response(&bytes, Operation::Decrypt) {
            Err(Error::Failed {
                operation,
                status,
                reason,
                message,
            }) => {
                assert_eq!(operation, Operation::Decrypt);
                assert_eq!(status, ResultStatus::OperationFailed);
                assert_eq!(reason, Some(ResultReason::CryptographicFailure));
                assert_eq!(message.as_deref(), Some("bad tag"));
            }
            other => panic!("{other:?}"),
        }
        // Unknown reasons are kept, not lost.
        let bytes = response(vec![
            Item::new(tag::RESULT_STATUS, Value::Enumeration(1)),
            Item::new(tag::RESULT_REASON, Value::Enumeration(0x8000_0001)),
        ]);
        assert!(matches!(
            decode_response(&bytes, Operation::Encrypt),
            Err(Error::Failed {
                reason: Some(ResultReason::Other(0x8000_0001)),
                ..
            })
        ));
    }

    #[test]
    fn encrypt_request_layout_and_response() {
        let req = Request::Encrypt {
            unique_identifier: "7",
            data: b"pt",
            iv: &[9; 12],
            aad: b"aad",
        };
        let root = Item::decode(&req.encode(ProtocolVersion::V1_4, Some(65536))).unwrap();
        let header = root.child(tag::REQUEST_HEADER).unwrap();
        assert_eq!(
            header.child(tag::MAXIMUM_RESPONSE_SIZE).unwrap().as_i32(),
            Some(65536)
        );
        let item = root.child(tag::BATCH_ITEM).unwrap();
        let p = item.child(tag::REQUEST_PAYLOAD).unwrap();
        let order: Vec<u32> = p.children().iter().map(|i| i.tag.0).collect();
        assert_eq!(
            order,
            vec![0x420094, 0x42002B, 0x4200C2, 0x42003D, 0x4200FE]
        );
        let params = p.child(tag::CRYPTOGRAPHIC_PARAMETERS).unwrap();
        assert_eq!(
            params.child(tag::BLOCK_CIPHER_MODE).unwrap().as_enum(),
            Some(9)
        );
        assert_eq!(params.child(tag::TAG_LENGTH).unwrap().as_i32(), Some(16));

        let bytes = response(vec![
            Item::new(
                tag::OPERATION,
                Value::Enumeration(Operation::Encrypt.to_u32()),
            ),
            Item::new(tag::RESULT_STATUS, Value::Enumeration(0)),
            Item::structure(
                tag::RESPONSE_PAYLOAD,
                vec![
                    Item::new(tag::UNIQUE_IDENTIFIER, Value::TextString("7".into())),
                    Item::new(tag::DATA, Value::bytes(b"ct")),
                    Item::new(tag::AUTHENTICATED_ENCRYPTION_TAG, Value::bytes(&[1; 16])),
                ],
            ),
        ]);
        let m = decode_response(&bytes, Operation::Encrypt).unwrap();
        match m.response {
            Response::Encrypt { data, iv, tag, .. } => {
                assert_eq!(data.as_slice(), b"ct");
                assert_eq!(iv, None);
                assert_eq!(tag, Some(vec![1; 16]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn get_attributes_response_maps_to_key_attributes() {
        let a = |name: &str, v: Value| Attribute::new(name, v).to_item();
        let bytes = response(vec![
            Item::new(
                tag::OPERATION,
                Value::Enumeration(Operation::GetAttributes.to_u32()),
            ),
            Item::new(tag::RESULT_STATUS, Value::Enumeration(0)),
            Item::structure(
                tag::RESPONSE_PAYLOAD,
                vec![
                    Item::new(tag::UNIQUE_IDENTIFIER, Value::TextString("1".into())),
                    a(attr::OBJECT_TYPE, Value::Enumeration(2)),
                    a(attr::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(3)),
                    a(attr::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
                    a(attr::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(12)),
                    a(attr::STATE, Value::Enumeration(2)),
                ],
            ),
        ]);
        let Response::GetAttributes { attributes, .. } =
            decode_response(&bytes, Operation::GetAttributes)
                .unwrap()
                .response
        else {
            panic!()
        };
        assert_eq!(
            KeyAttributes::from_attributes(&attributes),
            KeyAttributes {
                object_type: Some(ObjectType::SymmetricKey),
                algorithm: Some(CryptographicAlgorithm::Aes),
                length: Some(256),
                usage_mask: Some(12),
                state: Some(State::Active),
            }
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        // Not a response message.
        let req = Request::Activate {
            unique_identifier: "1",
        }
        .encode(ProtocolVersion::V1_4, None);
        assert!(matches!(
            decode_response(&req, Operation::Activate),
            Err(Error::Malformed(_))
        ));
        // Success without the payload fields.
        let bytes = response(vec![Item::new(tag::RESULT_STATUS, Value::Enumeration(0))]);
        assert!(matches!(
            decode_response(&bytes, Operation::Activate),
            Err(Error::Malformed(_))
        ));
        // Garbage.
        assert!(decode_response(&[0x42, 0, 0x7B, 1, 0, 0, 0, 8], Operation::Activate).is_err());
    }

    #[test]
    fn debug_output_never_shows_data() {
        let r = Request::Encrypt {
            unique_identifier: "7",
            data: b"top secret",
            iv: &[0; 12],
            aad: b"",
        };
        let s = format!("{r:?}");
        assert!(s.contains("Encrypt") && !s.contains("116"), "{s}");
        let d = Response::Decrypt {
            unique_identifier: "7".into(),
            data: Zeroizing::new(b"top secret".to_vec()),
        };
        let s = format!("{d:?}");
        assert!(!s.contains("116") && s.contains("data_len: 10"), "{s}");
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(
            "1.4".parse::<ProtocolVersion>().unwrap(),
            ProtocolVersion::V1_4
        );
        assert!("14".parse::<ProtocolVersion>().is_err());
        assert!(ProtocolVersion::V1_4 > ProtocolVersion::V1_2);
        assert_eq!(ProtocolVersion::V1_4.to_string(), "1.4");
    }
}
