//! The signed-in session, kept per user in the config directory
//! (`$POPUG_CONFIG_DIR`, else e.g. `~/.config/popug/session.json`), so later
//! commands use it. The file is readable by its owner only.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// What `popug login` saves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The auth-svc that issued the tokens.
    pub(crate) auth_url: String,
    /// The signed-in login.
    pub(crate) login: String,
    /// The access token.
    pub(crate) access_token: String,
    /// The refresh token (single use; replaced on every refresh).
    pub(crate) refresh_token: String,
    /// When the access token expires (seconds since the Unix epoch).
    pub(crate) expires_at: i64,
}

fn path() -> anyhow::Result<PathBuf> {
    Ok(crate::config::dir()?.join("session.json"))
}

impl Session {
    /// The saved session.
    pub(crate) fn load() -> anyhow::Result<Self> {
        let path = path()?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                bail!("not signed in: run `popug login` first")
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a popug session; run `popug login`",
                path.display()
            )
        })
    }

    /// Saves the session, readable by the user only.
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        let path = path()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self)?;
        write_private(&path, &text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Forgets the session.
    pub(crate) fn remove() -> anyhow::Result<()> {
        match std::fs::remove_file(path()?) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}
