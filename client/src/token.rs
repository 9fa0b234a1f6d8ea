//! Personal tokens for the web dashboard: made here from the operating system's randomness,
//! shown once, and kept by the database only as their SHA-256 (`migrations/0018_web.sql`).

use sha2::{Digest, Sha256};

/// What every token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const PREFIX: &str = "sisy_";

/// A new token: `sisy_` and 64 hex digits (256 random bits).
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(std::io::Error::other)?;
    Ok(format!("{PREFIX}{}", hex(&bytes)))
}

/// The SHA-256 the database keeps of `token`.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// Lower-case hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_as_sha256() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64, "{a}");
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(
            hex(&hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
