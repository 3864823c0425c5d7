//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes).

use argon2::{
    Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _,
    password_hash::{SaltString, rand_core::OsRng},
};

use super::Password;

/// The PHC-format argon2id hash of `password`. CPU-heavy: call it off the
/// async runtime (`spawn_blocking`).
pub fn hash(password: &Password) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

/// Whether `password` matches `hash`. A malformed stored hash never matches.
pub fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A real hash of a random password, checked against on unknown logins so
/// that they take as long as known ones (no login enumeration by timing).
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash(&Password(uuid::Uuid::new_v4().to_string())));
    &DUMMY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let password = Password::parse("password", "correct horse").expect("valid");
        let hashed = hash(&password);
        assert!(hashed.starts_with("$argon2id$"));
        assert!(verify(&hashed, "correct horse"));
        assert!(!verify(&hashed, "wrong horse"));
        assert!(!verify("not a hash", "correct horse"));
        assert!(!verify(dummy_hash(), "correct horse"));
    }
}
