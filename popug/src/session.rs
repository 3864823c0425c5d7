//! The signed-in session, kept per user in the config directory
//! (`$POPUG_CONFIG_DIR`, else e.g. `~/.config/popug/session.json`), so later
//! commands use it. The file is readable by its owner only. [`signed_in`]
//! hands it out refreshed, with the bearer every authorized call carries.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use popug::client::{Authorized, Bearer, connect};
use popug_proto::pb::popug::auth::v1::{self as auth, auth_service_client::AuthServiceClient};
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

/// The saved session, refreshed first if its access token is about to expire.
pub(crate) async fn signed_in() -> anyhow::Result<(Session, Bearer)> {
    let mut session = Session::load()?;
    if session.expires_at - 30 < chrono::Utc::now().timestamp() {
        let refreshed = AuthServiceClient::new(connect(&session.auth_url).await?)
            .refresh(auth::RefreshRequest {
                refresh_token: session.refresh_token.clone(),
            })
            .await
            .map_err(|status| {
                anyhow!(
                    "the session has ended ({}); run `popug login`",
                    status.message()
                )
            })?
            .into_inner();
        session.access_token = refreshed.access_token;
        session.refresh_token = refreshed.refresh_token;
        session.expires_at = chrono::Utc::now().timestamp() + refreshed.expires_in;
        session.save()?;
    }
    let bearer = Bearer::new(&session.access_token)
        .context("the saved access token is unusable; run `popug login`")?;
    Ok((session, bearer))
}

/// An auth-svc client that signs its calls with the saved session.
pub(crate) type AuthClient = AuthServiceClient<Authorized>;

/// The signed-in session's auth-svc, and the session.
pub(crate) async fn auth_client() -> anyhow::Result<(AuthClient, Session)> {
    let (session, bearer) = signed_in().await?;
    let channel = connect(&session.auth_url).await?;
    Ok((
        AuthServiceClient::with_interceptor(channel, bearer),
        session,
    ))
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
