//! Payout emails through lettre: SMTP when `POPUG_SMTP_URL` is set, else a
//! file per email in the mail directory, where a person can read it. Emails
//! are written with their payout and sent after the commit; a row is locked
//! while it is sent and marked sent in the same transaction, so replicas
//! never send one twice, and a failure is retried on the next round.

use std::time::Duration;

use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::Mailbox,
};
use popug_runtime::database::Pool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    error::Error,
    schema::{accounts, emails, payouts},
};

/// An unsent email: payout, amount, day, recipient, login.
type PendingEmail = (Uuid, i64, chrono::NaiveDate, Option<String>, Option<String>);

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, std::path::PathBuf),
}

/// Sends payout emails.
#[derive(Clone)]
pub struct Mailer {
    pool: Pool,
    transport: std::sync::Arc<Transport>,
    from: Mailbox,
}

impl Mailer {
    /// SMTP at `smtp_url` (plain SMTP; `smtp://host:port`), or files in `mail_dir`.
    pub fn new(
        pool: Pool,
        smtp_url: Option<&url::Url>,
        mail_dir: &std::path::Path,
        from: Mailbox,
    ) -> Self {
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                    url.host_str().unwrap_or("127.0.0.1"),
                )
                .port(url.port().unwrap_or(25))
                .timeout(Some(Duration::from_secs(10)))
                .build(),
            ),
            None => Transport::Files(AsyncFileTransport::new(mail_dir), mail_dir.to_owned()),
        };
        Self {
            pool,
            transport: std::sync::Arc::new(transport),
            from,
        }
    }

    /// Sends every unsent payout email whose recipient is known; returns how
    /// many went out. A failure stays pending with its error.
    pub async fn send_pending(&self) -> Result<usize, Error> {
        if let Transport::Files(_, dir) = &*self.transport {
            tokio::fs::create_dir_all(dir).await.map_err(|error| {
                Error::internal(format!("mail directory {}: {error}", dir.display()))
            })?;
        }
        let mut sent = 0;
        loop {
            let mut conn = popug_runtime::database::conn(&self.pool).await?;
            let outcome = conn
                .transaction::<_, Error, _>(async |conn| {
                    let next: Option<PendingEmail> = emails::table
                        .inner_join(payouts::table.inner_join(accounts::table))
                        .filter(emails::sent_at.is_null())
                        .filter(accounts::email.is_not_null())
                        .order(emails::created_at)
                        .select((
                            emails::payout_id,
                            payouts::amount_cents,
                            payouts::day,
                            accounts::email,
                            accounts::login,
                        ))
                        .for_update()
                        .skip_locked()
                        .first(conn)
                        .await
                        .optional()?;
                    let Some((payout_id, amount_cents, day, email, login)) = next else {
                        return Ok(None);
                    };
                    let result = self
                        .send(
                            payout_id,
                            amount_cents,
                            day,
                            email.as_deref().unwrap_or_default(),
                            login.as_deref(),
                        )
                        .await;
                    match &result {
                        Ok(()) => {
                            diesel::update(emails::table.find(payout_id))
                                .set((
                                    emails::sent_at.eq(diesel::dsl::now),
                                    emails::attempts.eq(emails::attempts + 1),
                                ))
                                .execute(conn)
                                .await?;
                        }
                        Err(error) => {
                            diesel::update(emails::table.find(payout_id))
                                .set((
                                    emails::attempts.eq(emails::attempts + 1),
                                    emails::last_error.eq(error.as_str()),
                                ))
                                .execute(conn)
                                .await?;
                        }
                    }
                    Ok(Some(result))
                })
                .await?;
            match outcome {
                None => return Ok(sent),
                Some(Ok(())) => sent += 1,
                Some(Err(error)) => {
                    tracing::error!(%error, "ALERT: a payout email could not be sent; it will be retried");
                    return Ok(sent);
                }
            }
        }
    }

    async fn send(
        &self,
        payout_id: Uuid,
        amount_cents: i64,
        day: chrono::NaiveDate,
        email: &str,
        login: Option<&str>,
    ) -> Result<(), String> {
        let to: Mailbox = email
            .parse()
            .map_err(|error| format!("recipient `{email}`: {error}"))?;
        let amount = format!("${}.{:02}", amount_cents / 100, amount_cents % 100);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .message_id(Some(format!("<payout-{payout_id}@popug.local>")))
            .subject(format!("popug payout for {day}: {amount}"))
            .body(format!(
                "Hello {},\n\nyour balance for {day} was {amount}; it has been paid out to you.\nPayout id: {payout_id}\n\npopug billing\n",
                login.unwrap_or("popug")
            ))
            .map_err(|error| error.to_string())?;
        match &*self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(drop)
                .map_err(|error| error.to_string())?,
            Transport::Files(files, dir) => {
                let id = files
                    .send(message)
                    .await
                    .map_err(|error| error.to_string())?;
                tracing::info!(%payout_id, file = %dir.join(format!("{id}.eml")).display(), "payout email written");
            }
        }
        tracing::info!(%payout_id, %email, %amount, "payout email sent");
        Ok(())
    }

    /// Sends pending emails every `interval` until `token` is cancelled.
    pub async fn run(self, interval: Duration, token: CancellationToken) {
        while !token.is_cancelled() {
            if let Err(error) = self.send_pending().await {
                tracing::error!(%error, "payout email round failed");
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {},
                () = token.cancelled() => {},
            }
        }
    }
}
