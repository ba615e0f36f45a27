//! Results and their three renderings: a table for people, JSON, JUnit XML.

use crate::cases::Group;
use crate::check::Mismatch;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
    #[serde(rename = "SKIP")]
    Skip,
    /// Conformant to one reading of an ambiguous rule, not to the one the
    /// run follows: reported with the clause, does not fail the run.
    #[serde(rename = "WARN")]
    Warn,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
            Verdict::Warn => "WARN",
        }
    }
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Passed, with something the reader should know (which allowed
    /// answer was seen, which reading of an ambiguity).
    PassNote(String),
    Fail(Vec<Mismatch>),
    Skip(String),
    Warn(Vec<Mismatch>),
}

impl Outcome {
    /// Pass when nothing broke.
    pub fn from_mismatches(m: Vec<Mismatch>) -> Outcome {
        if m.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail(m)
        }
    }
}

impl From<crate::check::Judged> for Outcome {
    fn from(j: crate::check::Judged) -> Outcome {
        use crate::check::Judged;
        match j {
            Judged::Pass => Outcome::Pass,
            Judged::PassNote(n) => Outcome::PassNote(n),
            Judged::Warn(m) => Outcome::Warn(m),
            Judged::Fail(m) => Outcome::Fail(m),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub group: Group,
    pub description: String,
    pub clause: String,
    pub result: Verdict,
    /// Why the case was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What broke (FAIL) or follows the other reading (WARN), with
    /// expected and observed values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    /// Which allowed answer was seen, or which reading an answer follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub millis: u64,
}

impl CaseResult {
    pub fn new(
        id: &str,
        group: Group,
        description: &str,
        clause: &str,
        outcome: Outcome,
        millis: u64,
    ) -> Self {
        let (result, reason, mismatches, note) = match outcome {
            Outcome::Pass => (Verdict::Pass, None, Vec::new(), None),
            Outcome::PassNote(n) => (Verdict::Pass, None, Vec::new(), Some(n)),
            Outcome::Fail(m) => (Verdict::Fail, None, m, None),
            Outcome::Warn(m) => (Verdict::Warn, None, m, None),
            Outcome::Skip(r) => (Verdict::Skip, Some(r), Vec::new(), None),
        };
        CaseResult {
            id: id.to_owned(),
            group,
            description: description.to_owned(),
            clause: clause.to_owned(),
            result,
            reason,
            mismatches,
            note,
            millis,
        }
    }

    /// One line per mismatch (or the skip reason).
    pub fn reason_lines(&self) -> Vec<String> {
        match self.result {
            Verdict::Pass => self.note.iter().cloned().collect(),
            Verdict::Skip => vec![self.reason.clone().unwrap_or_default()],
            Verdict::Fail | Verdict::Warn => {
                self.mismatches.iter().map(|m| m.to_string()).collect()
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub warned: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub endpoint: String,
    pub uri_path: String,
    pub region: String,
    /// Negotiated TLS version, cipher suite and the subject of the
    /// proxy's certificate (absent over plain HTTP or if TLS failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_suite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_subject: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: String,
    pub target: TargetInfo,
    pub summary: Summary,
    pub millis: u64,
    pub cases: Vec<CaseResult>,
}

impl Report {
    pub fn new(target: TargetInfo, cases: Vec<CaseResult>, millis: u64) -> Self {
        let count = |v: Verdict| cases.iter().filter(|c| c.result == v).count();
        let summary = Summary {
            total: cases.len(),
            passed: count(Verdict::Pass),
            failed: count(Verdict::Fail),
            skipped: count(Verdict::Skip),
            warned: count(Verdict::Warn),
        };
        Report {
            tool: format!("xks-conformance {}", env!("CARGO_PKG_VERSION")),
            target,
            summary,
            millis,
            cases,
        }
    }

    pub fn has_failures(&self) -> bool {
        self.summary.failed > 0
    }

    /// The readable table: result, id, description; below a FAIL or SKIP
    /// its reasons (observed vs expected) and the spec clause.
    pub fn to_table(&self) -> String {
        let width = self
            .cases
            .iter()
            .map(|c| c.id.len())
            .max()
            .unwrap_or(2)
            .max(2);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "xks-conformance against {}{} (region {})\n",
            self.target.endpoint, self.target.uri_path, self.target.region
        );
        let _ = writeln!(s, "{:<6}{:<width$}  DESCRIPTION", "", "ID");
        for c in &self.cases {
            let _ = writeln!(
                s,
                "{:<6}{:<width$}  {}",
                c.result.as_str(),
                c.id,
                c.description
            );
            if c.result != Verdict::Pass || c.note.is_some() {
                let pad = " ".repeat(6 + width + 2);
                for line in c.reason_lines() {
                    let _ = writeln!(s, "{pad}- {line}");
                }
                if matches!(c.result, Verdict::Fail | Verdict::Warn) {
                    let _ = writeln!(s, "{pad}  spec: {}", c.clause);
                }
            }
        }
        let _ = writeln!(
            s,
            "\n{} cases: {} passed, {} failed, {} skipped, {} warnings ({:.1} s)",
            self.summary.total,
            self.summary.passed,
            self.summary.failed,
            self.summary.skipped,
            self.summary.warned,
            self.millis as f64 / 1000.0
        );
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// JUnit XML: one testsuite per group, one testcase per case.
    pub fn to_junit(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            s,
            "<testsuites name=\"xks-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{:.3}\">",
            self.summary.total,
            self.summary.failed,
            self.summary.skipped,
            self.millis as f64 / 1000.0
        );
        for g in Group::ALL {
            let cases: Vec<&CaseResult> = self.cases.iter().filter(|c| c.group == g).collect();
            if cases.is_empty() {
                continue;
            }
            let n = |v: Verdict| cases.iter().filter(|c| c.result == v).count();
            let time: u64 = cases.iter().map(|c| c.millis).sum();
            let _ = writeln!(
                s,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{:.3}\">",
                g.as_str(),
                cases.len(),
                n(Verdict::Fail),
                n(Verdict::Skip),
                time as f64 / 1000.0
            );
            for c in cases {
                let _ = write!(
                    s,
                    "    <testcase classname=\"xks-conformance.{}\" name=\"{}\" time=\"{:.3}\">",
                    g.as_str(),
                    xml(&c.id),
                    c.millis as f64 / 1000.0
                );
                match c.result {
                    Verdict::Pass => {}
                    Verdict::Warn => {
                        let _ = write!(
                            s,
                            "\n      <system-out>WARN {}\nspec: {}</system-out>\n    ",
                            xml(&c.reason_lines().join("\n")),
                            xml(&c.clause)
                        );
                    }
                    Verdict::Skip => {
                        let _ = write!(
                            s,
                            "\n      <skipped message=\"{}\"/>\n    ",
                            xml(c.reason.as_deref().unwrap_or(""))
                        );
                    }
                    Verdict::Fail => {
                        let lines = c.reason_lines();
                        let _ = write!(
                            s,
                            "\n      <failure type=\"nonconformance\" message=\"{}\">{}\n{}\nspec: {}</failure>\n    ",
                            xml(lines.first().map_or("", String::as_str)),
                            xml(&c.description),
                            xml(&lines.join("\n")),
                            xml(&c.clause)
                        );
                    }
                }
                let _ = writeln!(s, "</testcase>");
            }
            let _ = writeln!(s, "  </testsuite>");
        }
        s.push_str("</testsuites>\n");
        s
    }
}

/// Escapes text for XML content and attributes; drops characters XML 1.0
/// cannot carry.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let fail = Outcome::Fail(vec![Mismatch::new("status", "400", "200")]);
        Report::new(
            TargetInfo {
                endpoint: "https://xks.example.com".into(),
                uri_path: "/kms/xks/v1".into(),
                region: "us-east-1".into(),
                tls_version: Some("TLSv1_3".into()),
                tls_suite: Some("TLS13_AES_256_GCM_SHA384".into()),
                server_subject: Some("CN=xks.example.com".into()),
            },
            vec![
                CaseResult::new(
                    "routing.get-health",
                    Group::Routing,
                    "GET is 405",
                    "c1",
                    Outcome::Pass,
                    3,
                ),
                CaseResult::new(
                    "keys.disabled.encrypt",
                    Group::Keys,
                    "disabled <key> & \"x\"",
                    "c2",
                    fail,
                    5,
                ),
                CaseResult::new(
                    "keys.no-usage.encrypt",
                    Group::Keys,
                    "no usage",
                    "c3",
                    Outcome::Skip("needs --no-usage-key-id".into()),
                    0,
                ),
            ],
            1234,
        )
    }

    #[test]
    fn summary_and_exit_status() {
        let r = sample();
        assert_eq!(
            r.summary,
            Summary {
                total: 3,
                passed: 1,
                failed: 1,
                skipped: 1,
                warned: 0
            }
        );
        assert!(r.has_failures());
        assert!(r.tool.starts_with("xks-conformance "));
    }

    #[test]
    fn table_shows_observed_and_expected() {
        let t = sample().to_table();
        assert!(t.contains("PASS  routing.get-health"), "{t}");
        assert!(t.contains("FAIL  keys.disabled.encrypt"), "{t}");
        assert!(t.contains("- status: expected 400, observed 200"), "{t}");
        assert!(t.contains("spec: c2"), "{t}");
        assert!(t.contains("- needs --no-usage-key-id"), "{t}");
        assert!(
            t.contains("3 cases: 1 passed, 1 failed, 1 skipped, 0 warnings (1.2 s)"),
            "{t}"
        );
    }

    #[test]
    fn json_has_every_field() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["summary"]["failed"], 1);
        assert_eq!(v["cases"][0]["result"], "PASS");
        assert_eq!(v["cases"][0]["group"], "routing");
        assert!(v["cases"][0].get("mismatches").is_none());
        assert_eq!(v["cases"][1]["mismatches"][0]["expected"], "400");
        assert_eq!(v["cases"][1]["mismatches"][0]["observed"], "200");
        assert_eq!(v["cases"][1]["clause"], "c2");
        assert_eq!(v["cases"][2]["reason"], "needs --no-usage-key-id");
    }

    #[test]
    fn junit_is_escaped_and_counted() {
        let x = sample().to_junit();
        assert!(x.starts_with("<?xml"));
        assert!(
            x.contains(r#"<testsuites name="xks-conformance" tests="3" failures="1" skipped="1""#)
        );
        assert!(x.contains(r#"<testsuite name="keys" tests="2" failures="1" skipped="1""#));
        assert!(x.contains("disabled &lt;key&gt; &amp; &quot;x&quot;"));
        assert!(x.contains(r#"<skipped message="needs --no-usage-key-id"/>"#));
        assert!(x.contains(r#"message="status: expected 400, observed 200""#));
        assert_eq!(x.matches("<testcase ").count(), 3);
        assert_eq!(x.matches("</testcase>").count(), 3);
        assert_eq!(xml("a\u{1}b\nc"), "a?b&#10;c");
    }
}
