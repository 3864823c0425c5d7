//! `cargo run --release -p bench -- flood`: what a flood of wrong-password
//! sign-ins does to auth-svc. An attacker, a process of its own (this
//! program again, `flood-attack`), keeps `concurrency` logins in flight for
//! `seconds` (half on one victim's login, half on made-up logins, over 16
//! connections, as a botnet behind one address would send them), while a
//! legitimate client on its own connection asks `WhoAmI` every 10 ms.
//! Reported: the answers by code, the legitimate calls' latency, the
//! process's memory (resident now and at its peak), the CPU used, and how
//! long after the flood the victim's right password works again.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{StreamExt as _, stream};
use popug_proto::pb::popug::auth::v1::{self as auth, auth_service_client::AuthServiceClient};
use tonic::{Code, transport::Channel};

use crate::cpu::Cpu;

/// What to run.
pub(crate) struct Options {
    pub(crate) concurrency: usize,
    pub(crate) seconds: u64,
}

/// Resident memory of this process now and at its peak, in MiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub(crate) async fn run(postgres: &url::Url, options: &Options) -> anyhow::Result<()> {
    let auth_server = crate::auth_server::AuthServer::start(postgres).await?;
    let admin = auth_server.admin_token.clone();
    let mut client = AuthServiceClient::new(auth_server.channel().await?);
    let mut create = tonic::Request::new(auth::CreateAccountRequest {
        login: "victim".into(),
        password: "victim-password".into(),
        name: "Victim".into(),
        email: "victim@popug.example".into(),
        role: auth::Role::Worker.into(),
    });
    create
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse()?);
    client.create_account(create).await?;
    let (rss_before, _) = memory();
    println!(
        "flood benchmark: {} wrong-password logins in flight for {} s; WhoAmI every 10 ms beside them",
        options.concurrency, options.seconds
    );

    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let cpu_before = Cpu::now();
    let legitimate = tokio::spawn(who_am_i_until(
        auth_server.channel().await?,
        admin.clone(),
        deadline,
    ));
    let attacker = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "flood-attack",
            "--addr",
            &auth_server.addr.to_string(),
            "--concurrency",
            &options.concurrency.to_string(),
            "--seconds",
            &options.seconds.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .await?;
    anyhow::ensure!(attacker.status.success(), "the attacker failed");
    let outcomes: Vec<Outcome> = serde_json::from_slice(&attacker.stdout)?;
    let cpu = Cpu::now().since(cpu_before);
    let (rss_after_flood, rss_peak) = memory();
    let mut latencies = legitimate.await??;

    // The right password, until it works again.
    let stopped = Instant::now();
    let recovered = loop {
        let login = client
            .login(auth::LoginRequest {
                login: "victim".into(),
                password: "victim-password".into(),
            })
            .await;
        match login {
            Ok(_) => break stopped.elapsed(),
            Err(status)
                if status.code() == Code::ResourceExhausted
                    && stopped.elapsed() < Duration::from_secs(120) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => anyhow::bail!("the right password failed after the flood: {status}"),
        }
    };
    auth_server.stop().await?;

    let count = |wanted: fn(&Result<(), Code>) -> bool| {
        outcomes
            .iter()
            .map(|outcome| outcome.count * usize::from(wanted(&outcome.code())))
            .sum::<usize>()
    };
    let answered: usize = outcomes.iter().map(|outcome| outcome.count).sum();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!();
    println!("{:<58} {:>14}", "measurement", "value");
    println!("{:<58} {:>14}", "login attempts answered", answered);
    println!(
        "{:<58} {:>14}",
        "  UNAUTHENTICATED (password checked, wrong)",
        count(|o| *o == Err(Code::Unauthenticated))
    );
    println!(
        "{:<58} {:>14}",
        "  RESOURCE_EXHAUSTED (throttled or shed, no hash)",
        count(|o| *o == Err(Code::ResourceExhausted))
    );
    println!(
        "{:<58} {:>14}",
        "  anything else",
        count(|o| !matches!(o, Err(Code::Unauthenticated | Code::ResourceExhausted)))
    );
    println!(
        "{:<58} {:>14}",
        format!(
            "legitimate WhoAmI p50 / p99 / max, ms ({} calls)",
            latencies.len()
        ),
        format!("{:.1} / {:.1} / {:.1}", at(0.5), at(0.99), at(1.0))
    );
    println!(
        "{:<58} {:>14}",
        "resident memory before / after / peak, MiB",
        format!("{rss_before} / {rss_after_flood} / {rss_peak}")
    );
    println!(
        "{:<58} {:>14}",
        "cpu ms per attempt of auth-svc (popug + postgres + rabbitmq)",
        cpu.per(answered)
    );
    println!(
        "{:<58} {:>14.1}",
        "seconds until the right password works again",
        recovered.as_secs_f64()
    );
    anyhow::ensure!(
        count(|o| !matches!(o, Err(Code::Unauthenticated | Code::ResourceExhausted))) == 0,
        "some attempts got an unexpected answer"
    );
    Ok(())
}

/// `WhoAmI` every 10 ms until `deadline`; the latencies in milliseconds.
async fn who_am_i_until(
    channel: Channel,
    token: String,
    deadline: Instant,
) -> anyhow::Result<Vec<f64>> {
    let mut client = AuthServiceClient::new(channel);
    let mut latencies = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    while Instant::now() < deadline {
        ticks.tick().await;
        let mut request = tonic::Request::new(auth::WhoAmIRequest {});
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let started = Instant::now();
        client
            .who_am_i(request)
            .await
            .context("a legitimate WhoAmI failed")?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

/// How many attempts got one answer (the code's number, 0 for OK).
#[derive(serde::Serialize, serde::Deserialize)]
struct Outcome {
    code: i32,
    count: usize,
}

impl Outcome {
    fn code(&self) -> Result<(), Code> {
        match Code::from_i32(self.code) {
            Code::Ok => Ok(()),
            code => Err(code),
        }
    }
}

/// The attacker: wrong-password sign-ins against `addr`, `concurrency` in
/// flight for `seconds`; prints how many got which answer, as JSON.
pub(crate) async fn attack(
    addr: std::net::SocketAddr,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let mut connections = Vec::new();
    for _ in 0..16 {
        connections.push(
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                .connect()
                .await?,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let attempts = stream::iter(0_usize..)
        .take_while(|_| std::future::ready(Instant::now() < deadline))
        .map(|n| {
            let channel = connections[n % connections.len()].clone();
            async move {
                let login = if n % 2 == 0 {
                    "victim".to_owned()
                } else {
                    format!("nobody-{n}")
                };
                AuthServiceClient::new(channel)
                    .login(auth::LoginRequest {
                        login,
                        password: "wrong-password".into(),
                    })
                    .await
                    .map_or_else(|status| status.code() as i32, |_| 0)
            }
        })
        .buffer_unordered(concurrency);
    let codes: Vec<i32> = attempts.collect().await;
    let mut counts = std::collections::BTreeMap::new();
    for code in codes {
        *counts.entry(code).or_insert(0_usize) += 1;
    }
    let outcomes: Vec<Outcome> = counts
        .into_iter()
        .map(|(code, count)| Outcome { code, count })
        .collect();
    #[allow(clippy::print_stdout)] // the report goes to the parent
    {
        println!("{}", serde_json::to_string(&outcomes)?);
    }
    Ok(())
}
