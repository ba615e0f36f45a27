//! Fuzz body: xks-proxy's TOML configuration, parsed and validated.

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = xks_proxy::config::Config::parse(text) {
        // Validation reads secret files: a fuzzer naming /dev/zero would
        // hang it, so configurations that point at files are only parsed.
        if !text.contains("_file") {
            let _ = cfg.validate();
        }
    }
}
