//! Critical's ACL permission bit set (`docs/providers/critical.md`): FETCH 1, LIST 2, NOTIFY 4,
//! CREATE 8, MODIFY 16 (which also allows delete), CUSTOM1 32, CUSTOM2 64, with the
//! composites READ, WRITE and ROOT. The `bitflags` crate serializes it as flag names
//! joined by ` | ` (`"READ | CREATE"`); older documents hold a plain number. Both are read.

use serde::Deserialize;

/// The single-bit flags, in bit order: the names the graph uses.
pub const FLAGS: [(&str, u32); 7] = [
    ("FETCH", 1),
    ("LIST", 2),
    ("NOTIFY", 4),
    ("CREATE", 8),
    ("MODIFY", 16),
    ("CUSTOM1", 32),
    ("CUSTOM2", 64),
];

/// The composites, accepted on input only: the graph spells out their bits.
const COMPOSITES: [(&str, u32); 3] = [("READ", 7), ("WRITE", 31), ("ROOT", 127)];

/// Every bit Critical defines.
pub const ALL: u32 = 127;

/// A permission value as stored: a number or the flags' text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Stored {
    /// `7`
    Number(i64),
    /// `"READ | CREATE"`
    Text(String),
}

/// The bits of a stored value, or the part of it no flag names.
pub fn decode(stored: &Stored) -> Result<u32, String> {
    match stored {
        Stored::Number(n) if (0..=i64::from(ALL)).contains(n) => Ok(*n as u32),
        Stored::Number(n) => Err(format!("{n} sets bits no permission flag defines")),
        Stored::Text(text) => {
            let mut bits = 0;
            for part in text.split('|').map(str::trim).filter(|p| !p.is_empty()) {
                let upper = part.to_ascii_uppercase();
                let named = FLAGS
                    .iter()
                    .chain(COMPOSITES.iter())
                    .find(|(name, _)| *name == upper)
                    .map(|(_, b)| *b);
                let bit = match named {
                    Some(b) => b,
                    // `bitflags` writes bits no flag names as hex.
                    None => match upper.strip_prefix("0X") {
                        Some(hex) => u32::from_str_radix(hex, 16)
                            .ok()
                            .filter(|b| b & !ALL == 0)
                            .ok_or_else(|| format!("{part:?} is not a permission flag"))?,
                        None => return Err(format!("{part:?} is not a permission flag")),
                    },
                };
                bits |= bit;
            }
            Ok(bits)
        }
    }
}

/// The names of the single flags set in `bits`, in bit order.
pub fn names(bits: u32) -> Vec<String> {
    FLAGS
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(n, _)| (*n).to_owned())
        .collect()
}

/// `bits` as text for an edge's `grants`: `FETCH | LIST`, or `none`.
pub fn text(bits: u32) -> String {
    let names = names(bits);
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_flag_text_decode_alike() {
        assert_eq!(decode(&Stored::Number(7)), Ok(7));
        assert_eq!(decode(&Stored::Text("READ | CREATE".into())), Ok(15));
        assert_eq!(decode(&Stored::Text("FETCH | LIST | NOTIFY".into())), Ok(7));
        assert_eq!(decode(&Stored::Text("ROOT".into())), Ok(127));
        assert_eq!(decode(&Stored::Text("write|custom2".into())), Ok(31 | 64));
        assert_eq!(decode(&Stored::Text("".into())), Ok(0));
        assert_eq!(decode(&Stored::Text("MODIFY | 0x20".into())), Ok(48));
        assert!(
            decode(&Stored::Text("READ | SUDO".into()))
                .unwrap_err()
                .contains("SUDO")
        );
        assert!(decode(&Stored::Number(128)).is_err());
        let parsed: Stored = serde_json::from_str("\"READ\"").unwrap();
        assert_eq!(decode(&parsed), Ok(7));
        let parsed: Stored = serde_json::from_str("31").unwrap();
        assert_eq!(decode(&parsed), Ok(31));
    }

    #[test]
    fn names_spell_out_the_bits() {
        assert_eq!(names(7), ["FETCH", "LIST", "NOTIFY"]);
        assert_eq!(names(ALL).len(), 7);
        assert_eq!(text(24), "CREATE | MODIFY");
        assert_eq!(text(0), "none");
    }
}
