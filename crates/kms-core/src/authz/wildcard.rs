//! Glob matching as IAM does it: `*` matches any run of characters
//! (including none), `?` exactly one. Written by hand so that evaluation
//! compiles nothing per request and allocates nothing.

/// Whether `text` matches `pattern` (`*`, `?`), comparing characters
/// exactly (`ignore_case == false`) or ASCII-case-insensitively.
pub fn matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let eq = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // Iterative matcher with one backtrack point (the last `*`): linear in
    // practice, O(p*t) at worst, never recursive.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == b'?' {
            // `?` is one character: skip a whole UTF-8 sequence.
            pi += 1;
            ti += utf8_len(t[ti]);
        } else if pi < p.len() && eq(p[pi], t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            let next = st + utf8_len(t[st]);
            star = Some((sp, next));
            ti = next;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Whether the pattern holds a wildcard (exact compares are cheaper).
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.bytes().any(|b| b == b'*' || b == b'?')
}

/// ARN matching as `ArnLike`/`ArnEquals` do: the six colon-separated
/// parts are matched one by one (the resource part may hold colons).
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    let mut pp = pattern.splitn(6, ':');
    let mut ap = arn.splitn(6, ':');
    for _ in 0..6 {
        match (pp.next(), ap.next()) {
            (Some(p), Some(a)) => {
                if !matches(p, a, false) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool, bool)] = &[
            ("*", "", false, true),
            ("*", "anything", false, true),
            ("kms:*", "kms:Decrypt", false, true),
            ("kms:*", "KMS:Decrypt", true, true),
            ("kms:*", "KMS:Decrypt", false, false),
            ("kms:Re*", "kms:ReEncryptFrom", false, true),
            ("kms:Generate*", "kms:Encrypt", false, false),
            ("kms:Generate*Pair", "kms:GenerateDataKeyPair", false, true),
            (
                "kms:Generate*Pair",
                "kms:GenerateDataKeyPairWithoutPlaintext",
                false,
                false,
            ),
            ("a?c", "abc", false, true),
            ("a?c", "ac", false, false),
            ("a?c", "aéc", false, true),
            ("*a*b*c*", "xxaxxbxxcxx", false, true),
            ("*a*b*c*", "xxaxxcxxbxx", false, false),
            ("", "", false, true),
            ("", "x", false, false),
            ("abc", "abc", false, true),
            ("abc", "abcd", false, false),
            ("**", "x", false, true),
        ];
        for (p, t, ci, want) in cases {
            assert_eq!(matches(p, t, *ci), *want, "{p} vs {t} ci={ci}");
        }
    }

    #[test]
    fn arns() {
        assert!(arn_matches(
            "arn:aws:kms:*:111122223333:key/*",
            "arn:aws:kms:us-east-1:111122223333:key/abc"
        ));
        assert!(!arn_matches(
            "arn:aws:kms:*:111122223333:key/*",
            "arn:aws:kms:us-east-1:444455556666:key/abc"
        ));
        assert!(arn_matches(
            "arn:aws:iam::111122223333:role/*",
            "arn:aws:iam::111122223333:role/path/r"
        ));
        assert!(!arn_matches("arn:aws:iam::1:role/*", "not-an-arn"));
        assert!(arn_matches(
            "arn:aws:sts::1:assumed-role/R/*",
            "arn:aws:sts::1:assumed-role/R/s:with:colons"
        ));
    }
}
