//! Secret hygiene: placeholders copied from examples and keys too short to be
//! safe are refused instead of silently weakening encryption.

use base64::Engine;

const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "example",
    "replace",
    "todo",
    "xxxx",
    "your-",
    "your_",
    "<",
    "secret123",
    "password123",
    "default",
];

/// True when `value` looks like a value copied from documentation.
pub fn looks_like_placeholder(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.is_empty() || PLACEHOLDERS.iter().any(|p| v.contains(p))
}

/// Decodes a 32-byte key given as base64 (standard or URL-safe) or 64 hex
/// characters, refusing placeholders and low-entropy keys.
pub fn decode_key(value: &str) -> Result<[u8; 32], String> {
    let v = value.trim();
    if looks_like_placeholder(v) {
        return Err("looks like a placeholder".into());
    }
    let bytes = if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(v).map_err(|e| e.to_string())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(v)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(v))
            .map_err(|_| "is neither base64 nor 64 hex characters".to_string())?
    };
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("decodes to {} bytes; 32 are required", bytes.len()))?;
    let distinct = {
        let mut seen = [false; 256];
        key.iter().for_each(|b| seen[*b as usize] = true);
        seen.iter().filter(|s| **s).count()
    };
    if distinct < 8 {
        return Err("has too little entropy (repeated bytes); generate one with `postern gen-secrets`".into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised() {
        for p in ["changeme", "CHANGE_ME", "<your key>", "", "  ", "example-key"] {
            assert!(looks_like_placeholder(p), "{p:?}");
        }
        assert!(!looks_like_placeholder("q7Vx2mRkT1"));
    }

    #[test]
    fn keys_must_be_32_random_bytes() {
        let good = base64::engine::general_purpose::STANDARD.encode((0u8..32).collect::<Vec<_>>());
        assert!(decode_key(&good).is_ok());
        let hexkey = hex::encode((100u8..132).collect::<Vec<_>>());
        assert!(decode_key(&hexkey).is_ok());
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(decode_key(&short).unwrap_err().contains("16 bytes"));
        let flat = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(decode_key(&flat).unwrap_err().contains("entropy"));
        assert!(decode_key("changeme").is_err());
    }
}
