//! Opaque tokens: session tokens, login links, invites, API keys. Only their SHA-256
//! ever reaches storage; the plaintext is shown once.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh 256-bit random token, URL-safe base64 without padding, with a prefix that
/// says what it is (`rxs_` session, `rxk_` key, ...), so a leaked value is recognisable.
pub fn new_token(prefix: &str) -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// SHA-256 hex of a secret: what the database stores.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compare two strings in time independent of where they first differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A short human-typable code (enrolment codes): 12 characters from an unambiguous alphabet.
pub fn new_enrol_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..12)
        .map(|i| {
            let c = ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char;
            if i > 0 && i % 4 == 0 {
                format!("-{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_256_bit() {
        let a = new_token("rxs_");
        let b = new_token("rxs_");
        assert_ne!(a, b);
        assert!(a.starts_with("rxs_"));
        assert_eq!(a.len(), 4 + 43);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }

    #[test]
    fn enrol_codes_have_three_groups() {
        let c = new_enrol_code();
        assert_eq!(c.len(), 14);
        assert_eq!(c.matches('-').count(), 2);
    }
}
