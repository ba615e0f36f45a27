//! `X-Amz-Date` (`YYYYMMDD'T'HHMMSS'Z'`, UTC) to and from `SystemTime`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

const AMZ_DATE: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// Parses `20150830T123600Z`. Returns `None` for anything else, including
/// out-of-range fields and dates before 1970.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    // ASCII only (a multi-byte character must not reach byte slicing), and
    // `time` accepts a sign before the year, which the header never has.
    if s.len() != 16 || !s.is_ascii() || !s.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let t = PrimitiveDateTime::parse(s, AMZ_DATE).ok()?.assume_utc();
    let secs = u64::try_from(t.unix_timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Formats a time as `YYYYMMDD'T'HHMMSS'Z'`.
pub fn format_amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    // Formatting a valid date with a static description cannot fail.
    t.format(AMZ_DATE).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the sigv4_authorization fuzz target: a multi-byte
    /// character inside a field panicked when the field was sliced.
    #[test]
    fn non_ascii_dates_are_refused_not_a_panic() {
        assert_eq!(parse_amz_date("201\u{a0}830T123600Z"), None);
        assert_eq!(parse_amz_date("2015083\u{a0}T12360Z"), None);
        assert_eq!(
            parse_amz_date("\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}Z"),
            None
        );
        assert!(parse_amz_date("20150830T123600Z").is_some());
    }

    #[test]
    fn known_dates() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_440_938_160
        );
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        let leap = parse_amz_date("20240229T235959Z").unwrap();
        assert_eq!(format_amz_date(leap), "20240229T235959Z");
        assert_eq!(format_amz_date(UNIX_EPOCH), "19700101T000000Z");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20150230T123600Z",
            "20230229T000000Z",
            "20151330T123600Z",
            "20150830T243600Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn round_trips_many_days() {
        for day in (0..40_000u64).step_by(37) {
            let t = UNIX_EPOCH + Duration::from_secs(day * 86_400 + 3_723);
            assert_eq!(parse_amz_date(&format_amz_date(t)), Some(t));
        }
    }
}
