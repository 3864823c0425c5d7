//! Who may call a handler, stated in one line at its top:
//! `let caller = require_role(&request, &[Role::Manager, Role::Admin])?;`

use tonic::{Extensions, Request, Status};

use crate::{claims::Claims, role::Role};

/// Refuses `role` unless it is one of `roles`, saying who may call.
pub fn check_role(role: Role, roles: &[Role]) -> Result<(), Status> {
    if roles.contains(&role) {
        return Ok(());
    }
    let allowed: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    Err(Status::permission_denied(format!(
        "this call is for {}; you are {role}",
        allowed.join(" or ")
    )))
}

/// The caller's claims from `extensions`, if its role is one of `roles`.
pub fn require_role_in(extensions: &Extensions, roles: &[Role]) -> Result<Claims, Status> {
    let claims = extensions.get::<Claims>().cloned().ok_or_else(|| {
        Status::unauthenticated("this call needs an access token: `authorization: Bearer <token>`")
    })?;
    check_role(claims.role, roles)?;
    Ok(claims)
}

/// The caller's claims, if its role is one of `roles`.
pub fn require_role<T>(request: &Request<T>, roles: &[Role]) -> Result<Claims, Status> {
    require_role_in(request.extensions(), roles)
}

/// The caller's claims, whatever its role.
pub fn require_signed_in<T>(request: &Request<T>) -> Result<Claims, Status> {
    require_role_in(request.extensions(), &Role::ALL)
}

/// A check of a request's extensions, as the ops API takes it.
pub type Check = std::sync::Arc<dyn Fn(&Extensions) -> Result<(), Status> + Send + Sync>;

/// A check that admits admins only.
pub fn admins_only() -> Check {
    std::sync::Arc::new(|extensions| require_role_in(extensions, &[Role::Admin]).map(drop))
}

/// Who is calling, as the ops API records it (a discard's audit record):
/// the verified token's account id; `None` without a token.
pub type Identify = std::sync::Arc<
    dyn Fn(&tonic::metadata::MetadataMap, &Extensions) -> Option<String> + Send + Sync,
>;

/// Identifies callers by their verified token's account id.
pub fn caller_account_id() -> Identify {
    std::sync::Arc::new(|_, extensions| {
        extensions
            .get::<Claims>()
            .map(|claims| claims.account_id.to_string())
    })
}
