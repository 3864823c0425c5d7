//! Which service a request path goes to: the one rule of the router.

use popug_runtime::Service;

/// Where a path goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// To `service`, as `path` (the prefix, if any, removed).
    Service {
        /// The service.
        service: Service,
        /// The gRPC path it gets, `/<package>.<Service>/<Method>`.
        path: &'a str,
    },
    /// A call to a service every popug service serves
    /// (`popug.ops.v1.OpsService`), with no service named.
    Ambiguous,
    /// Not a call: a page or an asset.
    Page,
}

fn service_named(name: &str) -> Option<Service> {
    Service::ALL
        .into_iter()
        .find(|service| service.name() == name)
}

/// Routes `path`.
pub(crate) fn route(path: &str) -> Route<'_> {
    if let Some(rest) = path.strip_prefix("/services/") {
        return match rest.split_once('/') {
            Some((name, _)) => match service_named(name) {
                Some(service) => Route::Service {
                    service,
                    path: &rest[name.len()..],
                },
                None => Route::Page,
            },
            None => Route::Page,
        };
    }
    if let Some(rest) = path.strip_prefix("/popug.") {
        let package = rest.split('.').next().unwrap_or_default();
        if package == "ops" {
            return Route::Ambiguous;
        }
        if let Some(service) = service_named(package) {
            return Route::Service { service, path };
        }
    }
    Route::Page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_go_to_the_service_of_their_package_or_prefix() {
        assert_eq!(
            route("/popug.billing.v1.BillingService/GetMyAccount"),
            Route::Service {
                service: Service::Billing,
                path: "/popug.billing.v1.BillingService/GetMyAccount"
            }
        );
        assert_eq!(
            route("/services/tracker/popug.ops.v1.OpsService/ListDeadLetters"),
            Route::Service {
                service: Service::Tracker,
                path: "/popug.ops.v1.OpsService/ListDeadLetters"
            }
        );
        assert_eq!(
            route("/services/auth/grpc.health.v1.Health/Check"),
            Route::Service {
                service: Service::Auth,
                path: "/grpc.health.v1.Health/Check"
            }
        );
        assert_eq!(
            route("/popug.ops.v1.OpsService/ListDeadLetters"),
            Route::Ambiguous
        );
    }

    #[test]
    fn everything_else_is_a_page() {
        for path in [
            "/",
            "/analytics",
            "/accounting",
            "/app.js",
            "/services/",
            "/services/nobody/x",
            "/services/auth",
            "/popug.events.v1.Envelope/x",
        ] {
            assert_eq!(route(path), Route::Page, "{path}");
        }
    }
}
