//! AES-GCM output handling for the IV modes HSMs use: pure functions,
//! tested without a token.

use super::config::IvMode;
use crate::backend::{BackendError, Sealed};

/// The IV lengths the XKS API carries.
pub const IV_LENS: [usize; 2] = [12, 16];
pub const TAG_LEN: usize = 16;
pub const TAG_BITS: u64 = (TAG_LEN * 8) as u64;

impl IvMode {
    /// Whether the proxy chooses the IV (and passes it in CK_GCM_PARAMS).
    pub fn proxy_chooses(self) -> bool {
        matches!(self, IvMode::ProxyOsRng | IvMode::ProxyHsmRng)
    }

    /// Length of C_Encrypt's output for `plaintext_len` bytes.
    pub fn output_len(self, plaintext_len: usize, iv_len: usize) -> usize {
        match self {
            IvMode::HsmAppended => plaintext_len + TAG_LEN + iv_len,
            _ => plaintext_len + TAG_LEN,
        }
    }
}

/// Splits C_Encrypt's output into ciphertext, IV and tag.
///
/// `supplied` is the IV the proxy put into CK_GCM_PARAMS (zeros when the
/// HSM chooses) and `params_after` what the parameters hold after the call;
/// both have the configured IV length.
pub fn split_output(
    mode: IvMode,
    plaintext_len: usize,
    mut out: Vec<u8>,
    supplied: &[u8],
    params_after: &[u8],
) -> Result<Sealed, BackendError> {
    let iv_len = supplied.len();
    if !IV_LENS.contains(&iv_len) || params_after.len() != iv_len {
        return Err(BackendError::Internal(format!(
            "IV length {iv_len} is not one the XKS API carries (12 or 16)"
        )));
    }
    if out.len() != mode.output_len(plaintext_len, iv_len) {
        return Err(BackendError::Internal(format!(
            "C_Encrypt returned {} bytes for {plaintext_len} bytes of plaintext; iv_mode {mode:?} expects {} (check iv_mode)",
            out.len(),
            mode.output_len(plaintext_len, iv_len)
        )));
    }
    let iv: Vec<u8> = match mode {
        IvMode::ProxyOsRng | IvMode::ProxyHsmRng => {
            if params_after != supplied {
                return Err(BackendError::Internal(
                    "the HSM replaced the proxy's IV in CK_GCM_PARAMS; set iv_mode = \"hsm_params\""
                        .into(),
                ));
            }
            supplied.to_vec()
        }
        IvMode::HsmParams => params_after.to_vec(),
        IvMode::HsmAppended => out.split_off(plaintext_len + TAG_LEN),
    };
    if iv.iter().all(|b| *b == 0) {
        // 2^-96 for a random IV: an all-zero IV means nobody filled it in.
        return Err(BackendError::Internal(format!(
            "no IV came back from the HSM with iv_mode {mode:?} (check iv_mode)"
        )));
    }
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&out[plaintext_len..plaintext_len + TAG_LEN]);
    out.truncate(plaintext_len);
    Ok(Sealed {
        ciphertext: out,
        iv,
        tag,
    })
}

/// C_Decrypt's input: ciphertext ‖ tag.
pub fn decrypt_input(ciphertext: &[u8], tag: &[u8]) -> Result<Vec<u8>, BackendError> {
    if tag.len() != TAG_LEN {
        return Err(BackendError::InvalidCiphertext(
            "authentication tag must be 16 bytes",
        ));
    }
    let mut input = Vec::with_capacity(ciphertext.len() + TAG_LEN);
    input.extend_from_slice(ciphertext);
    input.extend_from_slice(tag);
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IV: [u8; 12] = [7; 12];

    fn output(ct: &[u8], tag: [u8; 16], tail: &[u8]) -> Vec<u8> {
        [ct, &tag, tail].concat()
    }

    #[test]
    fn proxy_modes_use_the_supplied_iv() {
        for mode in [IvMode::ProxyOsRng, IvMode::ProxyHsmRng] {
            let s = split_output(mode, 3, output(b"abc", [1; 16], &[]), &IV, &IV).unwrap();
            assert_eq!(
                (s.ciphertext.as_slice(), s.iv.as_slice(), s.tag),
                (&b"abc"[..], &IV[..], [1; 16])
            );
            // An HSM that silently substitutes its own IV is caught.
            let e = split_output(mode, 3, output(b"abc", [1; 16], &[]), &IV, &[9; 12]);
            assert!(matches!(e, Err(BackendError::Internal(m)) if m.contains("hsm_params")));
        }
    }

    #[test]
    fn hsm_params_reads_the_iv_back() {
        let s = split_output(
            IvMode::HsmParams,
            2,
            output(b"xy", [2; 16], &[]),
            &[0; 12],
            &[5; 12],
        )
        .unwrap();
        assert_eq!(s.iv, vec![5; 12]);
        assert_eq!(s.tag, [2; 16]);
        // The HSM did not fill pIv: refuse rather than report a wrong IV.
        let e = split_output(
            IvMode::HsmParams,
            2,
            output(b"xy", [2; 16], &[]),
            &[0; 12],
            &[0; 12],
        );
        assert!(matches!(e, Err(BackendError::Internal(m)) if m.contains("no IV")));
    }

    #[test]
    fn hsm_appended_takes_the_trailing_iv() {
        let s = split_output(
            IvMode::HsmAppended,
            4,
            output(b"data", [3; 16], &[4; 12]),
            &[0; 12],
            &[0; 12],
        )
        .unwrap();
        assert_eq!(s.ciphertext, b"data");
        assert_eq!(s.tag, [3; 16]);
        assert_eq!(s.iv, vec![4; 12]);
        // Thales Luna in FIPS mode appends a 16-byte IV.
        let s = split_output(
            IvMode::HsmAppended,
            4,
            output(b"data", [3; 16], &[6; 16]),
            &[0; 16],
            &[0; 16],
        )
        .unwrap();
        assert_eq!((s.ciphertext.len(), s.iv), (4, vec![6; 16]));
        // Output without the appended IV: wrong mode configured.
        let e = split_output(
            IvMode::HsmAppended,
            4,
            output(b"data", [3; 16], &[]),
            &[0; 12],
            &[0; 12],
        );
        assert!(matches!(e, Err(BackendError::Internal(m)) if m.contains("check iv_mode")));
    }

    #[test]
    fn wrong_lengths_are_errors_not_panics() {
        for mode in [
            IvMode::ProxyOsRng,
            IvMode::ProxyHsmRng,
            IvMode::HsmParams,
            IvMode::HsmAppended,
        ] {
            for len in [0, 1, 15, 16, 27, 28, 40] {
                let _ = split_output(mode, 5, vec![1; len], &IV, &IV);
                let _ = split_output(mode, 5, vec![1; len], &[1; 16], &[1; 16]);
            }
        }
        assert!(split_output(IvMode::ProxyOsRng, 1, vec![1; 17], &[1; 8], &[1; 8]).is_err());
        assert!(decrypt_input(b"c", &[0; 15]).is_err());
        assert_eq!(decrypt_input(b"c", &[9; 16]).unwrap().len(), 17);
    }
}
