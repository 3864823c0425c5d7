//! The Kubernetes manifests against the binaries they deploy: every
//! environment variable a Deployment sets is one its binary reads, the
//! values it sets load as valid settings, and the ports and probes are the
//! ones the binary listens on. Each overlay is rendered with the real
//! `kubectl kustomize`; what a binary reads is recorded as it loads its
//! settings, so the test follows the code rather than a list.

use std::collections::{BTreeMap, BTreeSet};

use popug_runtime::{Env, Settings, SettingsError};
use serde::Deserialize as _;
use serde_yaml::Value;

/// Every object of `k8s/overlays/<overlay>`, rendered.
fn render(overlay: &str) -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../k8s/overlays");
    let output = std::process::Command::new("kubectl")
        .args(["kustomize", &format!("{dir}/{overlay}")])
        .output()
        .expect("kubectl is installed");
    assert!(
        output.status.success(),
        "kubectl kustomize {overlay}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_yaml::Deserializer::from_slice(&output.stdout)
        .map(|document| Value::deserialize(document).expect("YAML"))
        .filter(|object| !object.is_null())
        .collect()
}

/// Loads the settings `binary` loads from `env`: the shared part of them.
fn load(binary: &str, env: &Env) -> Result<Settings, SettingsError> {
    match binary {
        "auth-svc" => auth_svc::AuthSettings::load(env).map(|settings| settings.common),
        "tracker-svc" => tracker_svc::TrackerSettings::load(env).map(|settings| settings.common),
        "billing-svc" => billing_svc::BillingSettings::load(env).map(|settings| settings.common),
        "analytics-svc" => {
            analytics_svc::AnalyticsSettings::load(env).map(|settings| settings.common)
        }
        other => panic!("no popug binary is called {other}"),
    }
}

/// The variable names `binary` reads, set or not (plus `RUST_LOG`, which
/// the log filter reads).
fn names_read(binary: &str) -> BTreeSet<String> {
    let env = Env::from_pairs([]);
    load(binary, &env).expect("the defaults load");
    let mut names = env.names_read();
    names.insert("RUST_LOG".into());
    names
}

fn str_of<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
}

/// A ConfigMap's or Secret's keys and (for ConfigMaps) values, by the name
/// Deployments use.
fn sources(objects: &[Value], kind: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    objects
        .iter()
        .filter(|object| str_of(object, &["kind"]) == Some(kind))
        .map(|object| {
            let name = str_of(object, &["metadata", "name"])
                .expect("a name")
                .to_owned();
            let data = object
                .get("data")
                .and_then(Value::as_mapping)
                .map(|data| {
                    data.iter()
                        .map(|(key, value)| {
                            (
                                key.as_str().expect("a key").to_owned(),
                                value.as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (name, data)
        })
        .collect()
}

#[test]
fn manifests_set_only_what_the_binaries_read_on_the_ports_they_serve() {
    for overlay in ["dev", "prod"] {
        let objects = render(overlay);
        let configmaps = sources(&objects, "ConfigMap");
        let secrets = sources(&objects, "Secret");
        // web-svc is not a gRPC service: its own test below.
        let deployments: Vec<&Value> = objects
            .iter()
            .filter(|object| str_of(object, &["kind"]) == Some("Deployment"))
            .filter(|object| str_of(object, &["metadata", "name"]) != Some("web-svc"))
            .collect();
        assert_eq!(
            deployments.len(),
            4,
            "{overlay}: one Deployment per service"
        );
        for deployment in deployments {
            let name = str_of(deployment, &["metadata", "name"]).expect("a name");
            let where_ = format!("{overlay}/{name}");
            let container = &deployment["spec"]["template"]["spec"]["containers"][0];
            let binary = container["command"][0]
                .as_str()
                .and_then(|command| command.rsplit('/').next())
                .expect("a command");
            assert_eq!(binary, name, "{where_}: runs its own binary");
            let read = names_read(binary);

            // Every variable the container gets, with the values that are
            // not secret (secrets and mounted files cannot be loaded here).
            let mut names = BTreeSet::new();
            let mut values: BTreeMap<String, String> = BTreeMap::new();
            for variable in container["env"].as_sequence().into_iter().flatten() {
                let variable_name = str_of(variable, &["name"]).expect("a name").to_owned();
                if let Some(value) = str_of(variable, &["value"])
                    && !variable_name.ends_with("_FILE")
                {
                    values.insert(variable_name.clone(), value.to_owned());
                }
                names.insert(variable_name);
            }
            for source in container["envFrom"].as_sequence().into_iter().flatten() {
                if let Some(configmap) = str_of(source, &["configMapRef", "name"]) {
                    let data = configmaps.get(configmap).unwrap_or_else(|| {
                        panic!("{where_}: ConfigMap {configmap} is not rendered")
                    });
                    names.extend(data.keys().cloned());
                    values.extend(data.clone());
                }
                if let Some(secret) = str_of(source, &["secretRef", "name"])
                    && let Some(data) = secrets.get(secret)
                {
                    names.extend(data.keys().cloned());
                }
            }
            let unread: Vec<&String> = names.difference(&read).collect();
            assert!(
                unread.is_empty(),
                "{where_} sets {unread:?}, which {binary} never reads"
            );

            let env = Env::from_pairs(values.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let settings = load(binary, &env)
                .unwrap_or_else(|error| panic!("{where_}: its settings do not load: {error}"));
            let ports: BTreeMap<&str, u64> = container["ports"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|port| {
                    (
                        str_of(port, &["name"]).expect("named ports"),
                        port["containerPort"].as_u64().expect("a port"),
                    )
                })
                .collect();
            assert!(
                settings.addr.ip().is_unspecified(),
                "{where_}: gRPC must listen on all interfaces"
            );
            assert_eq!(
                ports.get("grpc"),
                Some(&u64::from(settings.addr.port())),
                "{where_}: grpc port"
            );
            assert!(
                settings.metrics_addr.ip().is_unspecified(),
                "{where_}: metrics on all interfaces"
            );
            assert_eq!(
                ports.get("metrics"),
                Some(&u64::from(settings.metrics_addr.port())),
                "{where_}: metrics port"
            );
            let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
            assert_eq!(
                str_of(annotations, &["prometheus.io/port"]),
                Some(settings.metrics_addr.port().to_string().as_str()),
                "{where_}: Prometheus scrapes the metrics port"
            );
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                assert_eq!(
                    container[probe]["grpc"]["port"].as_u64(),
                    Some(u64::from(settings.addr.port())),
                    "{where_}: {probe} asks grpc.health.v1 on the gRPC port"
                );
            }
        }
    }
}

#[test]
fn the_web_deployment_sets_only_what_web_svc_reads_and_reaches_every_service() {
    for overlay in ["dev", "prod"] {
        let objects = render(overlay);
        let configmaps = sources(&objects, "ConfigMap");
        let deployment = objects
            .iter()
            .find(|object| {
                str_of(object, &["kind"]) == Some("Deployment")
                    && str_of(object, &["metadata", "name"]) == Some("web-svc")
            })
            .unwrap_or_else(|| panic!("{overlay}: a web-svc Deployment"));
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["command"][0].as_str(),
            Some("/usr/local/bin/web-svc")
        );
        let read = {
            let env = Env::from_pairs([]);
            web_svc::WebSettings::load(&env).expect("the defaults load");
            let mut names = env.names_read();
            names.insert("RUST_LOG".into());
            names
        };
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for variable in container["env"].as_sequence().into_iter().flatten() {
            let name = str_of(variable, &["name"]).expect("a name").to_owned();
            assert!(
                read.contains(&name),
                "{overlay}: web-svc never reads {name}"
            );
            let value = match str_of(variable, &["value"]) {
                Some(value) => value.to_owned(),
                None => {
                    let configmap = str_of(variable, &["valueFrom", "configMapKeyRef", "name"])
                        .expect("a value or a ConfigMap key");
                    let key =
                        str_of(variable, &["valueFrom", "configMapKeyRef", "key"]).expect("a key");
                    configmaps[configmap]
                        .get(key)
                        .unwrap_or_else(|| panic!("{overlay}: {configmap} has no {key}"))
                        .clone()
                }
            };
            values.insert(name, value);
        }
        let env = Env::from_pairs(values.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let settings = web_svc::WebSettings::load(&env)
            .unwrap_or_else(|error| panic!("{overlay}: web-svc's settings do not load: {error}"));
        assert!(
            settings.addr.ip().is_unspecified(),
            "{overlay}: all interfaces"
        );
        assert_eq!(
            container["ports"][0]["containerPort"].as_u64(),
            Some(u64::from(settings.addr.port()))
        );
        // Each upstream is a Service of the overlay, on the port its
        // Deployment listens on.
        for service in popug_runtime::Service::ALL {
            let upstream = settings.upstream(service);
            let name = format!("{service}-svc");
            assert_eq!(
                upstream.host_str(),
                Some(name.as_str()),
                "{overlay}: {name}"
            );
            let port = objects
                .iter()
                .find(|object| {
                    str_of(object, &["kind"]) == Some("Service")
                        && str_of(object, &["metadata", "name"]) == Some(name.as_str())
                })
                .and_then(|object| object["spec"]["ports"].as_sequence())
                .and_then(|ports| {
                    ports
                        .iter()
                        .find(|port| str_of(port, &["name"]) == Some("grpc"))
                })
                .and_then(|port| port["port"].as_u64());
            assert_eq!(
                port,
                upstream.port().map(u64::from),
                "{overlay}: {name}'s port"
            );
        }
        assert!(
            objects.iter().any(|object| {
                str_of(object, &["kind"]) == Some("Ingress")
                    && object["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
                        .as_str()
                        == Some("web-svc")
            }),
            "{overlay}: an Ingress sends browsers to web-svc"
        );
    }
}

/// The broker's definitions with the namespace filled in.
fn definitions(namespace: &str) -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../k8s/base/rabbitmq-definitions.json"
    );
    let text = std::fs::read_to_string(path).expect("the definitions");
    serde_json::from_str(&text.replace("@NS@", namespace)).expect("JSON")
}

#[test]
fn every_service_has_its_broker_user_and_each_producer_publishes_only_its_own_events() {
    let definitions = definitions("popug");
    let users: BTreeSet<&str> = definitions["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|user| user["name"].as_str())
        .collect();
    let catalog = popug_proto::events::catalog();
    for overlay in ["dev", "prod"] {
        let objects = render(overlay);
        let configmaps = sources(&objects, "ConfigMap");
        let secrets = sources(&objects, "Secret");
        let config = configmaps
            .iter()
            .find(|(name, _)| name.starts_with("popug-config"))
            .map(|(_, data)| data)
            .expect("popug-config");
        let producer_users: popug_runtime::ProducerUsers = config
            .get("POPUG_AMQP_PRODUCER_USERS")
            .expect("the producers' users are configured")
            .parse()
            .expect("a valid map");
        for (producer, user) in producer_users.iter() {
            assert_eq!(user, format!("popug-{producer}"), "{overlay}");
        }
        for service in popug_runtime::Service::ALL {
            let user = format!("popug-{service}");
            assert!(users.contains(user.as_str()), "{user} is not defined");
            // Each Deployment connects with its own Secret's URL...
            let deployment = objects
                .iter()
                .find(|object| {
                    str_of(object, &["kind"]) == Some("Deployment")
                        && str_of(object, &["metadata", "name"])
                            == Some(format!("{service}-svc").as_str())
                })
                .expect("a Deployment");
            let amqp = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_sequence()
                .into_iter()
                .flatten()
                .find(|variable| str_of(variable, &["name"]) == Some("POPUG_AMQP_URL"))
                .expect("POPUG_AMQP_URL is set");
            let secret = str_of(amqp, &["valueFrom", "secretKeyRef", "name"]).expect("a Secret");
            assert!(
                secret.starts_with(&format!("popug-amqp-{service}")),
                "{overlay}/{service}: {secret}"
            );
            // ...whose user (in dev, where the Secret is rendered) is its own.
            if let Some((_, data)) = secrets.iter().find(|(name, _)| name.as_str() == secret)
                && let Some(url) = data.get("url")
            {
                use base64::Engine as _;
                let url = String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(url.split_whitespace().collect::<String>())
                        .expect("Secret data is base64"),
                )
                .expect("text");
                let parsed: url::Url = url.parse().expect("a URL");
                assert_eq!(parsed.username(), user, "{overlay}/{service}");
            }
        }
    }
    // Topic permissions: each producer's user may publish exactly the routing
    // keys the catalog gives it, on the namespace's exchange.
    for service in popug_runtime::Service::ALL {
        let user = format!("popug-{service}");
        let permission = definitions["topic_permissions"]
            .as_array()
            .expect("topic permissions")
            .iter()
            .find(|permission| permission["user"] == user.as_str())
            .unwrap_or_else(|| panic!("{user} has no topic permission"));
        assert_eq!(permission["exchange"], "popug.popug.events");
        let write =
            regex::Regex::new(permission["write"].as_str().expect("a pattern")).expect("a regex");
        for info in &catalog {
            assert_eq!(
                write.is_match(info.routing_key),
                info.producer == service.name(),
                "{user} and {}",
                info.routing_key
            );
        }
    }
}
