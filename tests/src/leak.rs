//! Whether a text gives a secret away: what a test asserts of everything a plugin, the
//! log or the report got.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Decodes any run a decoder would take: padded or not, trailing bits allowed.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Whether `text` gives `secret` away: as written or percent-decoded in any ASCII case,
/// or decoded from any run of hex or base64 characters (either alphabet) at any offset.
pub fn gives_away(text: &str, secret: &str) -> bool {
    let found = |hay: &[u8]| hay.windows(secret.len()).any(|w| w == secret.as_bytes());
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
    let lower = secret.to_ascii_lowercase();
    if [text, &decoded]
        .iter()
        .any(|t| t.to_ascii_lowercase().contains(&lower))
    {
        return true;
    }
    let runs = |keep: fn(&u8) -> bool| -> Vec<Vec<u8>> {
        text.as_bytes()
            .split(|b| !keep(b))
            .filter(|r| r.len() >= 4)
            .map(<[u8]>::to_vec)
            .collect()
    };
    for run in runs(u8::is_ascii_hexdigit) {
        for off in 0..2 {
            let even = &run[off..off + (run.len() - off) / 2 * 2];
            if hex::decode(even).is_ok_and(|d| found(&d)) {
                return true;
            }
        }
    }
    for run in runs(|b| b.is_ascii_alphanumeric() || b"+/-_".contains(b)) {
        let standard: Vec<u8> = run
            .iter()
            .map(|&b| match b {
                b'-' => b'+',
                b'_' => b'/',
                b => b,
            })
            .collect();
        for off in 0..4.min(standard.len()) {
            let tail = &standard[off..];
            // A lone last character holds no whole byte.
            let tail = &tail[..tail.len() - usize::from(tail.len() % 4 == 1)];
            if LENIENT.decode(tail).is_ok_and(|d| found(&d)) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::reflections;

    #[test]
    fn sees_every_reflection() {
        let secret = "s3cr3t-Value-4711";
        for (form, text) in reflections(secret) {
            assert!(gives_away(&text, secret), "{form}: {text}");
        }
        assert!(!gives_away("s3cr3t-Value-471", secret));
        assert!(!gives_away("{secret:token}", secret));
    }
}
