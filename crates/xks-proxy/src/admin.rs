//! `xks-proxy keys ...`: administration of the embedded key manager.
//!
//! The CLI opens the same SQLite store as the running proxy (a separate
//! connection); the proxy picks changes up within its reload interval.

use crate::backend::software::master::{MasterKey, MasterKeySource};
use crate::backend::software::store::{Db, StoredUsage};
use crate::config::{BackendConfig, Config};
use anyhow::{bail, Context};
use std::fmt::Write as _;
use std::path::PathBuf;
use xks_wire::ExternalKeyId;

/// Which store to administer.
#[derive(Debug, Clone)]
pub struct Target {
    pub data_dir: PathBuf,
    pub master_key: MasterKeySource,
}

impl Target {
    /// The software backend `name` of a configuration (or its only one).
    pub fn from_config(cfg: &Config, name: Option<&str>) -> anyhow::Result<Target> {
        let software: Vec<(&String, &BackendConfig)> = cfg
            .backends
            .iter()
            .filter(|(n, _)| name.is_none_or(|want| want == n.as_str()))
            .collect();
        let (n, b) = match software.as_slice() {
            [one] => *one,
            [] => bail!(
                "no backend {:?} in the configuration",
                name.unwrap_or("(any)")
            ),
            _ => bail!("the configuration has several backends: choose one with --backend"),
        };
        match b {
            BackendConfig::Software {
                data_dir,
                master_key_file,
                master_key_env,
                ..
            } => Ok(Target {
                data_dir: data_dir.clone(),
                master_key: match (master_key_env, master_key_file) {
                    (Some(v), _) => MasterKeySource::Env(v.clone()),
                    (None, Some(f)) => MasterKeySource::File(f.clone()),
                    (None, None) => MasterKeySource::File(data_dir.join("master.key")),
                },
            }),
            #[allow(unreachable_patterns)]
            _ => bail!("backend {n:?} is not a software backend"),
        }
    }

    pub fn open(&self) -> anyhow::Result<(Db, MasterKey)> {
        let master = MasterKey::load(&self.master_key)?;
        let db = Db::open(&self.data_dir, &master)
            .with_context(|| format!("opening key store in {}", self.data_dir.display()))?;
        Ok((db, master))
    }
}

/// One admin action.
#[derive(Debug, Clone)]
pub enum Action {
    Create { id: String, usage: StoredUsage },
    List { json: bool },
    Enable { id: String },
    Disable { id: String },
    SetUsage { id: String, usage: StoredUsage },
    Rotate { id: String },
    Delete { id: String, confirmed: bool },
}

/// Creates each `(id, usage)` key, then disables the ids in `disabled`: the
/// key set a test or demo prepares before starting a proxy.
pub fn provision(
    target: &Target,
    keys: &[(&str, StoredUsage)],
    disabled: &[&str],
) -> anyhow::Result<()> {
    for &(id, usage) in keys {
        run(
            target,
            Action::Create {
                id: id.to_owned(),
                usage,
            },
        )?;
    }
    for id in disabled {
        run(
            target,
            Action::Disable {
                id: (*id).to_owned(),
            },
        )?;
    }
    Ok(())
}

/// Runs an action and returns what to print.
pub fn run(target: &Target, action: Action) -> anyhow::Result<String> {
    let (mut db, master) = target.open()?;
    Ok(match action {
        Action::Create { id, usage } => {
            let key: ExternalKeyId = id.parse().with_context(|| format!("key id {id:?}"))?;
            db.create_key(&key, usage, &master)?;
            format!("created key {key} (usage {usage}, version 1)\n")
        }
        Action::List { json } => {
            let keys = db.list()?;
            if json {
                let v: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "id": k.id, "enabled": k.enabled, "usage": k.usage.as_str(),
                            "currentVersion": k.current_version, "versions": k.versions,
                            "createdAt": k.created_at,
                        })
                    })
                    .collect();
                format!("{}\n", serde_json::to_string_pretty(&v)?)
            } else {
                let mut out = format!(
                    "{:<40} {:<8} {:<16} {:>7} {:>8}\n",
                    "KEY ID", "STATE", "USAGE", "VERSION", "VERSIONS"
                );
                for k in keys {
                    let _ = writeln!(
                        out,
                        "{:<40} {:<8} {:<16} {:>7} {:>8}",
                        k.id,
                        if k.enabled { "ENABLED" } else { "DISABLED" },
                        k.usage.as_str(),
                        k.current_version,
                        k.versions
                    );
                }
                out
            }
        }
        Action::Enable { id } => {
            db.set_enabled(&id, true)?;
            format!("enabled key {id}\n")
        }
        Action::Disable { id } => {
            db.set_enabled(&id, false)?;
            format!("disabled key {id}\n")
        }
        Action::SetUsage { id, usage } => {
            db.set_usage(&id, usage)?;
            format!("key {id} usage is now {usage}\n")
        }
        Action::Rotate { id } => {
            let v = db.rotate(&id, &master)?;
            format!(
                "rotated key {id}: new ciphertexts use version {v}; older versions still decrypt\n"
            )
        }
        Action::Delete { id, confirmed } => {
            if !confirmed {
                bail!("deleting a key destroys its material and every ciphertext under it becomes undecryptable; repeat with --yes to confirm");
            }
            db.delete(&id)?;
            format!("deleted key {id}\n")
        }
    })
}
