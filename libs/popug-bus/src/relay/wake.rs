//! How a waiting relay wakes: on `NOTIFY popug_outbox` over a connection of
//! its own, after a pause, or when cancelled; without that connection it
//! polls.

use std::time::Duration;

use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use futures::{FutureExt as _, StreamExt as _};
use popug_runtime::database::Pool;
use tokio_util::sync::CancellationToken;

/// A dedicated connection listening for outbox notifications, or `None` when
/// it cannot be had (the relay then polls).
pub(super) async fn listen(pool: &Pool) -> Option<AsyncPgConnection> {
    let mut conn = match pool.dedicated_connection().await {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%error, "outbox relay cannot listen for notifications; polling");
            return None;
        }
    };
    match diesel::sql_query("LISTEN popug_outbox")
        .execute(&mut conn)
        .await
    {
        Ok(_) => Some(conn),
        Err(error) => {
            tracing::warn!(%error, "outbox relay cannot listen for notifications; polling");
            None
        }
    }
}

/// Waits for a notification, `pause`, or cancellation. Returns false when the
/// listening connection broke.
pub(super) async fn wait(
    listener: &mut Option<AsyncPgConnection>,
    pause: Duration,
    token: &CancellationToken,
) -> bool {
    let Some(conn) = listener else {
        tokio::select! {
            () = tokio::time::sleep(pause) => {},
            () = token.cancelled() => {},
        }
        return true;
    };
    // Fused: a stream that ended (the connection was cut, as a database
    // restart cuts it) must not be polled again, and the drain below may.
    let mut notifications = std::pin::pin!(conn.notifications_stream().fuse());
    let mut healthy = tokio::select! {
        notification = notifications.next() => matches!(notification, Some(Ok(_))),
        () = tokio::time::sleep(pause) => true,
        () = token.cancelled() => true,
    };
    // One step publishes everything committed so far: drop the wake-ups
    // that queued up meanwhile. An error or the end among them means the
    // connection is gone, however the wait itself ended.
    loop {
        match notifications.next().now_or_never() {
            Some(Some(Ok(_))) => {}
            Some(Some(Err(_)) | None) => {
                healthy = false;
                break;
            }
            None => break,
        }
    }
    healthy
}
