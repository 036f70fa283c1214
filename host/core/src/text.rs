//! [`Text`]: an immutable UTF-8 string that may share the buffer it was read from.
//!
//! A plugin sends a batch's text values laid end to end in one string per column. Giving
//! every value a `String` of its own cost an allocation and a copy per cell (a third of
//! the host's allocations in a sync of many small accounts, freed later on another
//! thread); a `Text` is a reference-counted slice of the column instead (issue 18).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable UTF-8 string: its own, or a slice of a buffer shared with other values.
/// Reads as a `&str` (it derefs to one); compares, hashes, prints and serialises as one.
#[derive(Clone)]
pub struct Text {
    buf: Arc<str>,
    start: u32,
    end: u32,
}

impl Text {
    /// The texts `ends` marks out of `buf`, each `buf[previous end .. end]`, sharing it;
    /// the error of [`Text::check_ends`] when they do not mark it out.
    pub fn split(buf: Arc<str>, ends: Vec<u32>) -> Result<Split, String> {
        Text::check_ends(&buf, &ends)?;
        Ok(Split {
            buf,
            ends: ends.into_iter(),
            start: 0,
        })
    }

    /// Checks that `ends` mark out strings of `data` one after another, using all of it,
    /// and that it is under 4 GiB (`ends` are `u32`, as the contract's are); the error
    /// says which string, and where, does not.
    pub fn check_ends(data: &str, ends: &[u32]) -> Result<(), String> {
        if u32::try_from(data.len()).is_err() {
            return Err(format!(
                "the data holds {} bytes, 4 GiB or more",
                data.len()
            ));
        }
        let mut start = 0;
        for (i, &end) in ends.iter().enumerate() {
            let end = end as usize;
            // `get` refuses a range that runs backwards, past the end, or into a character.
            if data.get(start..end).is_none() {
                return Err(format!(
                    "string {i} spans bytes {start}..{end} of {}, which is backwards, \
                     out of bounds or not on character boundaries",
                    data.len()
                ));
            }
            start = end;
        }
        if start != data.len() {
            return Err(format!(
                "the strings end at byte {start} but the data holds {}",
                data.len()
            ));
        }
        Ok(())
    }

    /// The text as a `&str`.
    pub fn as_str(&self) -> &str {
        // Every constructor checked the range lies on character boundaries of `buf`.
        &self.buf[self.start as usize..self.end as usize]
    }
}

/// The texts of [`Text::split`], in order.
pub struct Split {
    buf: Arc<str>,
    ends: std::vec::IntoIter<u32>,
    start: u32,
}

impl Iterator for Split {
    type Item = Text;

    #[inline]
    fn next(&mut self) -> Option<Text> {
        let end = self.ends.next()?;
        let start = std::mem::replace(&mut self.start, end);
        Some(Text {
            buf: self.buf.clone(),
            start,
            end,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

impl ExactSizeIterator for Split {}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::from(Arc::<str>::from(s))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::from(Arc::<str>::from(s))
    }
}

impl From<Arc<str>> for Text {
    /// The whole of `buf`. Panics past 4 GiB, which no value reaches: every value a plugin
    /// sends is capped far below (`property_value_bytes`).
    fn from(buf: Arc<str>) -> Text {
        let end = u32::try_from(buf.len()).expect("a text value under 4 GiB");
        Text { buf, start: 0, end }
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.as_str().to_owned()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    /// Refuses a text of 4 GiB or more (a file being read back, say) rather than panic.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        let s = String::deserialize(d)?;
        if u32::try_from(s.len()).is_err() {
            return Err(serde::de::Error::custom("a text value of 4 GiB or more"));
        }
        Ok(Text::from(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_shares_the_buffer_and_checks_every_end() {
        let buf: Arc<str> = Arc::from("abécd");
        let texts: Vec<Text> = Text::split(buf.clone(), vec![2, 4, 4, 6])
            .unwrap()
            .collect();
        assert_eq!(texts, ["ab", "é", "", "cd"].map(Text::from));
        assert_eq!(Arc::strong_count(&buf), 5);
        drop(texts);
        assert_eq!(Arc::strong_count(&buf), 1);
        // Into the middle of `é`, backwards, past the end.
        let fails_at = |ends: Vec<u32>| Text::split(buf.clone(), ends).err().unwrap_or_default();
        assert!(fails_at(vec![3]).starts_with("string 0 spans bytes 0..3 of 6"));
        assert!(fails_at(vec![4, 2]).starts_with("string 1 spans bytes 4..2 of 6"));
        assert!(fails_at(vec![2, 7]).starts_with("string 1 spans bytes 2..7 of 6"));
        assert_eq!(
            fails_at(vec![2]),
            "the strings end at byte 2 but the data holds 6"
        );
    }

    #[test]
    fn reads_prints_and_serialises_as_a_str() {
        let t = Text::from("a\"b".to_string());
        assert_eq!(t.len(), 3);
        assert_eq!(format!("{t} {t:?}"), "a\"b \"a\\\"b\"");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#""a\"b""#);
        assert_eq!(serde_json::from_str::<Text>(&json).unwrap(), t);
        assert_eq!(String::from(t), "a\"b");
    }
}
