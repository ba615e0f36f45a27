//! Fuzz body: kms-core's TOML files, the credentials file
//! (`AuthMode::configured_from_toml`) and the external key store settings
//! (`XksSettings::parse`, which reads the PEM files it names: settings
//! naming files are skipped, as a fuzzer naming /dev/zero would hang it).

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = kms_core::auth::AuthMode::configured_from_toml(text);
    if !text.contains("_file") {
        let _ = kms_core::xks::XksSettings::parse(text, std::path::Path::new("/nonexistent"));
    }
}
