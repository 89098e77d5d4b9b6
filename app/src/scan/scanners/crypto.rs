//! A cryptocurrency address written in the message (issue 14): where a
//! sextortion demand, a fake disaster appeal, a "recovery service" or an
//! advance-fee scam asks to be paid, irreversibly and untraceably. A
//! business's own mail asks for money through its own site, not an address
//! to copy by hand; an exchange's receipts that show one come from the
//! exchange, whose own links make them `BRAND_CONSISTENT`.
//!
//! Only addresses whose checksum holds count: Bitcoin's base58check and
//! bech32/bech32m (the `bs58` and `bech32` crates), Tron's base58check
//! (USDT on TRC20), and Ethereum's `0x` and forty hex digits. A random
//! token in a tracking link or a Message-ID practically never passes a
//! 32-bit checksum.

use crate::scan::{Finding, ScanInput};

/// A wallet address for a payment appears in the text.
pub const TAG_CRYPTO_ADDRESS: &str = "CRYPTO_PAY_ADDRESS";

/// Text looked at, from each body: demands sit near the top.
const MAX_TEXT: usize = 64 * 1024;

/// The first payment address in the message's text and visible HTML text.
pub fn check(input: &ScanInput) -> Option<Finding> {
    std::iter::once(input.text.as_str())
        .chain(input.html_visible.iter().map(String::as_str))
        .find_map(|t| first_address(head(t, MAX_TEXT)))
        .map(|(kind, addr)| Finding::new(TAG_CRYPTO_ADDRESS, format!("{kind} address {addr}")))
}

fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The first token of `text` that is a valid address, with its kind.
fn first_address(text: &str) -> Option<(&'static str, &str)> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(|w| kind(w).map(|k| (k, w)))
}

fn kind(w: &str) -> Option<&'static str> {
    let len = w.len();
    if (26..=35).contains(&len) && (w.starts_with('1') || w.starts_with('3')) && base58check(w, &[0x00, 0x05]) {
        return Some("Bitcoin");
    }
    if len == 34 && w.starts_with('T') && base58check(w, &[0x41]) {
        return Some("Tron");
    }
    if (14..=90).contains(&len) && w.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("bc1")) && bech32::segwit::decode(w).is_ok() {
        return Some("Bitcoin");
    }
    if len == 42 && w.starts_with("0x") && w[2..].bytes().all(|b| b.is_ascii_hexdigit()) && !digits_only(&w[2..]) {
        return Some("Ethereum");
    }
    None
}

/// A base58check string of 21 bytes whose version byte is one of `versions`.
fn base58check(w: &str, versions: &[u8]) -> bool {
    bs58::decode(w)
        .with_check(None)
        .into_vec()
        .is_ok_and(|v| v.len() == 21 && versions.contains(&v[0]))
}

/// Forty hex digits with no letter: a number, not an address.
fn digits_only(hex: &str) -> bool {
    hex.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses_of_each_kind_are_found() {
        // The Bitcoin genesis block's address, BIP-173's test vectors, a
        // Tron and an Ethereum address (EIP-55's examples).
        for (text, want) in [
            ("send 0.1 BTC to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa today", "Bitcoin"),
            ("wallet: bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4.", "Bitcoin"),
            ("ETH 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "Ethereum"),
        ] {
            assert_eq!(first_address(text).map(|(k, _)| k), Some(want), "{text}");
        }
        let mut tron = vec![0x41];
        tron.extend_from_slice(&[7u8; 20]);
        let tron = bs58::encode(tron).with_check().into_string();
        assert_eq!(first_address(&format!("USDT (TRC20): {tron}")), Some(("Tron", tron.as_str())));
    }

    #[test]
    fn look_alike_tokens_are_not_addresses() {
        for text in [
            // One character changed: the checksum fails.
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
            // Tracking tokens, hashes, IDs of the same length and alphabet.
            "https://click.example.test/3AbCdEfGhJkLmNpQrStUvWxYz12345",
            "Message-ID 1f3e9b2c4d5a6e7f8a9b0c1d2e3f4a5b6c7d8e9f",
            "commit 0x0000000000000000000000000000000000000000",
            "TRACKING T1234567890ABCDEFGHJKLMNPQRSTUV",
        ] {
            assert_eq!(first_address(text), None, "{text}");
        }
    }

    #[test]
    fn the_text_bound_cuts_on_a_character() {
        let t = "é".repeat(10);
        assert_eq!(head(&t, 5), "éé");
    }
}
