//! Typed clients of the four services, built from the generated stubs, that
//! add `authorization: Bearer <token>` to every call.

use std::time::Duration;

use anyhow::Context as _;
use popug_proto::pb::popug::{
    analytics::v1::analytics_service_client::AnalyticsServiceClient,
    auth::v1::auth_service_client::AuthServiceClient,
    billing::v1::{self as billing, billing_service_client::BillingServiceClient},
    ops::v1::ops_service_client::OpsServiceClient,
    tracker::v1::{self as tracker, tracker_service_client::TrackerServiceClient},
};
use popug_runtime::Service;
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// Where each service answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// auth-svc, e.g. `http://127.0.0.1:50051`.
    pub auth: String,
    /// tracker-svc.
    pub tracker: String,
    /// billing-svc.
    pub billing: String,
    /// analytics-svc.
    pub analytics: String,
}

impl Endpoints {
    /// From `POPUG_<SERVICE>_URL`, or the local defaults (the contract's ports).
    pub fn from_env() -> Self {
        let url = |service: Service| {
            let variable = format!("POPUG_{}_URL", service.name().to_uppercase());
            std::env::var(variable).unwrap_or_else(|_| format!("http://{}", service.default_addr()))
        };
        Self {
            auth: url(Service::Auth),
            tracker: url(Service::Tracker),
            billing: url(Service::Billing),
            analytics: url(Service::Analytics),
        }
    }

    /// The URL of `service`.
    pub fn of(&self, service: Service) -> &str {
        match service {
            Service::Auth => &self.auth,
            Service::Tracker => &self.tracker,
            Service::Billing => &self.billing,
            Service::Analytics => &self.analytics,
        }
    }
}

/// Opens a channel to `url`, naming it when it cannot be reached.
pub async fn connect(url: &str) -> anyhow::Result<Channel> {
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("`{url}` is not a URL"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot reach {url}; is `popug up` running?"))
}

/// A gRPC error as a readable line: the code and the service's message.
#[allow(
    clippy::needless_pass_by_value,
    reason = "shaped for `map_err(rpc_error)`"
)]
pub fn rpc_error(status: Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

/// The message a call answered, or its refusal as [`rpc_error`]:
/// `answer(client.get_task(request)).await?`.
pub async fn answer<T>(
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> anyhow::Result<T> {
    call.await
        .map(tonic::Response::into_inner)
        .map_err(rpc_error)
}

/// Adds an access token to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// The bearer of `access_token`.
    pub fn new(access_token: &str) -> anyhow::Result<Self> {
        Ok(Self(
            format!("Bearer {access_token}")
                .parse()
                .context("an access token must be header text")?,
        ))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel that carries a token.
pub type Authorized = InterceptedService<Channel, Bearer>;

/// One channel per service, shared by every signed-in user of this process.
#[derive(Clone)]
pub struct Channels {
    auth: Channel,
    tracker: Channel,
    billing: Channel,
    analytics: Channel,
}

impl Channels {
    /// Connects to every service of `endpoints`.
    pub async fn connect(endpoints: &Endpoints) -> anyhow::Result<Self> {
        Ok(Self {
            auth: connect(&endpoints.auth).await?,
            tracker: connect(&endpoints.tracker).await?,
            billing: connect(&endpoints.billing).await?,
            analytics: connect(&endpoints.analytics).await?,
        })
    }

    fn of(&self, service: Service) -> Channel {
        match service {
            Service::Auth => self.auth.clone(),
            Service::Tracker => self.tracker.clone(),
            Service::Billing => self.billing.clone(),
            Service::Analytics => self.analytics.clone(),
        }
    }

    /// auth-svc, signed out (login, sign-up, keys).
    pub fn anonymous_auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.auth.clone())
    }

    /// auth-svc as `bearer`.
    pub fn auth(&self, bearer: &Bearer) -> AuthServiceClient<Authorized> {
        AuthServiceClient::with_interceptor(self.auth.clone(), bearer.clone())
    }

    /// tracker-svc as `bearer`.
    pub fn tracker(&self, bearer: &Bearer) -> TrackerServiceClient<Authorized> {
        TrackerServiceClient::with_interceptor(self.tracker.clone(), bearer.clone())
    }

    /// billing-svc as `bearer`.
    pub fn billing(&self, bearer: &Bearer) -> BillingServiceClient<Authorized> {
        BillingServiceClient::with_interceptor(self.billing.clone(), bearer.clone())
    }

    /// analytics-svc as `bearer`.
    pub fn analytics(&self, bearer: &Bearer) -> AnalyticsServiceClient<Authorized> {
        AnalyticsServiceClient::with_interceptor(self.analytics.clone(), bearer.clone())
    }

    /// The ops endpoint of `service` as `bearer`.
    pub fn ops(&self, service: Service, bearer: &Bearer) -> OpsServiceClient<Authorized> {
        OpsServiceClient::with_interceptor(self.of(service), bearer.clone())
    }
}

/// Signs `login` in through `channels`; its access token as a bearer.
pub async fn sign_in(channels: &Channels, login: &str, password: &str) -> anyhow::Result<Bearer> {
    let signed_in = channels
        .anonymous_auth()
        .login(popug_proto::pb::popug::auth::v1::LoginRequest {
            login: login.into(),
            password: password.into(),
        })
        .await
        .map_err(rpc_error)
        .with_context(|| format!("signing in as {login}"))?
        .into_inner();
    Bearer::new(&signed_in.access_token)
}

/// Every item of a paged list: `fetch(page_token)` returns a page's items
/// and the next token, empty on the last page.
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = anyhow::Result<(Vec<T>, String)>>,
{
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let (page, next) = fetch(page_token).await?;
        items.extend(page);
        if next.is_empty() {
            return Ok(items);
        }
        page_token = next;
    }
}

/// The tracker's whole task history, every page (admins only).
pub async fn task_history(
    client: &TrackerServiceClient<Authorized>,
) -> anyhow::Result<Vec<tracker::HistoryEntry>> {
    all_pages(|page_token| {
        let mut client = client.clone();
        async move {
            let request = tracker::ListTaskHistoryRequest {
                page_size: 1000,
                page_token,
            };
            let page = answer(client.list_task_history(request)).await?;
            Ok((page.entries, page.next_page_token))
        }
    })
    .await
}

/// Billing's whole ledger, every page (accountants and admins).
pub async fn ledger_entries(
    client: &BillingServiceClient<Authorized>,
) -> anyhow::Result<Vec<billing::Entry>> {
    all_pages(|page_token| {
        let mut client = client.clone();
        async move {
            let request = billing::ListEntriesRequest {
                page_size: 1000,
                page_token,
            };
            let page = answer(client.list_entries(request)).await?;
            Ok((page.entries, page.next_page_token))
        }
    })
    .await
}
