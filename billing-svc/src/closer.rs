//! Closing days by themselves: at every midnight in the company's time zone
//! (and at start, for a midnight missed while down), the day that ended is
//! closed and its payout emails are sent. The close is idempotent and has a
//! single runner (an advisory lock), so every replica may run this.

use tokio_util::sync::CancellationToken;

use crate::{domain::money, mail::Mailer, store::Ledger};

/// Closes yesterday if it is not closed yet, then sends the emails.
pub async fn close_due(ledger: &Ledger, mailer: &Mailer) {
    let Some(yesterday) = ledger.today().pred_opt() else {
        return;
    };
    match ledger.last_closed().await {
        Ok(Some(last)) if last >= yesterday => {}
        Ok(_) => match ledger.close_day(yesterday).await {
            Ok(summary) => {
                tracing::info!(day = %summary.day, paid = summary.accounts_paid, "day closed at midnight");
            }
            Err(error) => {
                tracing::error!(%error, day = %yesterday, "ALERT: the day could not be closed; it will be retried");
            }
        },
        Err(error) => tracing::error!(%error, "ALERT: cannot read the last closed day"),
    }
    if let Err(error) = mailer.send_pending().await {
        tracing::error!(%error, "payout emails failed; they will be retried");
    }
}

/// Runs [`close_due`] at start and after every midnight until cancelled.
pub async fn run(ledger: Ledger, mailer: Mailer, token: CancellationToken) {
    loop {
        close_due(&ledger, &mailer).await;
        let now = ledger.now();
        let wait = (money::next_midnight(now, ledger.timezone()) - now)
            .to_std()
            .unwrap_or_default()
            + std::time::Duration::from_secs(1);
        tokio::select! {
            () = tokio::time::sleep(wait) => {},
            () = token.cancelled() => return,
        }
    }
}
