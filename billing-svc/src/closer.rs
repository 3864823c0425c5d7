//! Closing days by themselves: at every midnight in the company's time zone
//! (and at start, for a midnight missed while down), the day that ended is
//! closed and its payout emails are sent. A close that fails (the database
//! away at midnight) is retried on a growing schedule until it succeeds,
//! not left to the next midnight. The close is idempotent and has a single
//! runner (an advisory lock), so every replica may run this.

use popug_runtime::backoff::Backoff;
use tokio_util::sync::CancellationToken;

use crate::{domain::money, mail::Mailer, store::Ledger};

/// Closes yesterday if it is not closed yet, then sends the emails. Returns
/// false when yesterday is still open, so the caller retries.
pub async fn close_due(ledger: &Ledger, mailer: &Mailer) -> bool {
    let Some(yesterday) = ledger.today().pred_opt() else {
        return true;
    };
    let closed = match ledger.last_closed().await {
        Ok(Some(last)) if last >= yesterday => true,
        Ok(_) => match ledger.close_day(yesterday).await {
            Ok(summary) => {
                tracing::info!(day = %summary.day, paid = summary.accounts_paid, "day closed at midnight");
                true
            }
            Err(error) => {
                tracing::error!(%error, day = %yesterday, "ALERT: the day could not be closed; it will be retried");
                false
            }
        },
        Err(error) => {
            tracing::error!(%error, day = %yesterday, "ALERT: cannot read the last closed day; the close will be retried");
            false
        }
    };
    if let Err(error) = mailer.send_pending().await {
        tracing::error!(%error, "payout emails failed; they will be retried");
    }
    closed
}

/// Runs [`close_due`] at start and after every midnight until cancelled,
/// retrying a failed close on `retry`'s schedule.
pub async fn run(ledger: Ledger, mailer: Mailer, retry: Backoff, token: CancellationToken) {
    let mut retry = retry;
    loop {
        let wait = if close_due(&ledger, &mailer).await {
            retry.reset();
            let now = ledger.now();
            (money::next_midnight(now, ledger.timezone()) - now)
                .to_std()
                .unwrap_or_default()
                + std::time::Duration::from_secs(1)
        } else {
            retry.next_pause()
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {},
            () = token.cancelled() => return,
        }
    }
}
