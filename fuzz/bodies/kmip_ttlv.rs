//! Fuzz body: the KMIP TTLV decoder and the typed response decoding for
//! every operation the client sends. A decoded item re-encodes to bytes
//! that decode to the same item.

use kmip::spec::Operation;
use kmip::ttlv::Item;

const OPS: [Operation; 8] = [
    Operation::DiscoverVersions,
    Operation::Locate,
    Operation::GetAttributes,
    Operation::Create,
    Operation::Activate,
    Operation::Revoke,
    Operation::Encrypt,
    Operation::Decrypt,
];

pub fn run(data: &[u8]) {
    if let Ok(item) = Item::decode(data) {
        let again = item.encode();
        assert_eq!(again.len(), item.encoded_len());
        assert_eq!(
            Item::decode(&again).as_ref(),
            Ok(&item),
            "encode/decode identity"
        );
    }
    for op in OPS {
        let _ = kmip::message::decode_response(data, op);
    }
}
