//! `xks-conformance`: a conformance and load suite for XKS Proxy API v1
//! implementations.
//!
//! The conformance run is split the same way as the rest of the workspace:
//! [`cases`] is the catalogue (ids, descriptions, spec clauses, request
//! builders), [`request`] turns a case's request into exact wire bytes
//! (SigV4 included), [`check`] holds the verdicts — pure functions from
//! an observed response to the rules it breaks — and [`runner`],
//! [`transport`] and [`mtls`] are the I/O around them. [`report`] renders
//! the results as a table, JSON or JUnit XML. [`load`] is the load mode.
#![forbid(unsafe_code)]

pub mod cases;
pub mod check;
pub mod html;
pub mod load;
pub mod mtls;
pub mod report;
pub mod request;
pub mod runner;
pub mod tls;
pub mod transport;

pub use report::{Report, Verdict};
pub use runner::{run, MtlsSettings, Settings};
pub use tls::ServerTrust;
