//! People's names on the command line: a task is named by its key
//! (`POPUG-12`) or its id, an account by its login or its id; tables show
//! logins where the APIs answer with account ids. Logins and keys are
//! resolved through the APIs (`LookupAccounts`, `GetTask` by key), so the
//! rules of who may see what stay the services'.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use popug::client::{Authorized, answer, connect};
use popug_proto::pb::popug::{
    auth::v1::{self as auth, auth_service_client::AuthServiceClient},
    tracker::v1::{self as tracker, tracker_service_client::TrackerServiceClient},
};

use crate::session::Session;

type AuthClient = AuthServiceClient<Authorized>;

/// The auth client of the signed-in `session`.
pub(crate) async fn directory(
    session: &Session,
    bearer: &popug::client::Bearer,
) -> anyhow::Result<AuthClient> {
    Ok(AuthServiceClient::with_interceptor(
        connect(&session.auth_url).await?,
        bearer.clone(),
    ))
}

fn is_uuid(value: &str) -> bool {
    uuid::Uuid::try_parse(value).is_ok()
}

/// The account id of `account`: a login or an account id.
pub(crate) async fn account_id(client: &mut AuthClient, account: &str) -> anyhow::Result<String> {
    if is_uuid(account) {
        return Ok(account.to_owned());
    }
    let request = auth::LookupAccountsRequest {
        account_ids: Vec::new(),
        logins: vec![account.to_owned()],
    };
    let found = answer(client.lookup_accounts(request))
        .await
        .with_context(|| format!("looking up the login `{account}`"))?
        .accounts;
    match found.into_iter().next() {
        Some(entry) => Ok(entry.account_id),
        None => bail!("no account has the login `{account}` (give a login or an account id)"),
    }
}

/// The task id of `task`: a key such as `POPUG-12` or a task id.
pub(crate) async fn task_id(
    client: &mut TrackerServiceClient<Authorized>,
    task: &str,
) -> anyhow::Result<String> {
    if is_uuid(task) {
        return Ok(task.to_owned());
    }
    if !task.to_uppercase().starts_with("POPUG-") {
        bail!("`{task}` is neither a task key (such as POPUG-12) nor a task id");
    }
    let request = tracker::GetTaskRequest {
        task_id: String::new(),
        key: task.to_owned(),
    };
    let found = answer(client.get_task(request))
        .await?
        .task
        .context("the tracker answered without a task")?;
    Ok(found.task_id)
}

/// The logins of `ids` (account ids); ids no account has are left out.
pub(crate) async fn logins<'a>(
    client: &mut AuthClient,
    ids: impl IntoIterator<Item = &'a str>,
) -> anyhow::Result<HashMap<String, String>> {
    let mut wanted: Vec<String> = ids
        .into_iter()
        .filter(|id| is_uuid(id))
        .map(str::to_owned)
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut logins = HashMap::new();
    for chunk in wanted.chunks(1000) {
        let request = auth::LookupAccountsRequest {
            account_ids: chunk.to_vec(),
            logins: Vec::new(),
        };
        let found = answer(client.lookup_accounts(request)).await?.accounts;
        logins.extend(
            found
                .into_iter()
                .map(|entry| (entry.account_id, entry.login)),
        );
    }
    Ok(logins)
}
