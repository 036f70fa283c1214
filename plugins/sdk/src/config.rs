use crate::SyncError;
use crate::wit::types::ConfigValue;

/// The resolved settings the host passes to `sync`: the declared [`ConfigKey`]s, with the
/// operator's values or the defaults. An empty value counts as unset.
///
/// [`ConfigKey`]: crate::ConfigKey
#[derive(Debug, Clone, Default)]
pub struct Config {
    entries: Vec<(String, ConfigValue)>,
}

impl Config {
    pub(crate) fn new(entries: Vec<(String, ConfigValue)>) -> Config {
        Config { entries }
    }

    fn get(&self, name: &str) -> Option<&ConfigValue> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The text value of `name`, or `None` if it is unset, empty or a list.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            ConfigValue::Text(t) if !t.trim().is_empty() => Some(t),
            _ => None,
        }
    }

    /// The text value of `name`, or a [`SyncError::Config`] naming the key.
    pub fn require_text(&self, name: &str) -> Result<&str, SyncError> {
        self.text(name)
            .ok_or_else(|| SyncError::config(format!("config key {name:?} is not set")))
    }

    /// The list value of `name`; a text value is split on commas. Empty items are dropped
    /// and an unset key gives an empty list.
    pub fn list(&self, name: &str) -> Vec<String> {
        let items: Vec<&str> = match self.get(name) {
            None => Vec::new(),
            Some(ConfigValue::TextList(l)) => l.iter().map(String::as_str).collect(),
            Some(ConfigValue::Text(t)) => t.split(',').collect(),
        };
        items
            .into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(vec![
            ("tenant".into(), ConfigValue::Text("t-1".into())),
            ("blank".into(), ConfigValue::Text(" ".into())),
            (
                "zones".into(),
                ConfigValue::TextList(vec!["fr-par-1".into(), "".into()]),
            ),
            ("csv".into(), ConfigValue::Text("a, b,,c".into())),
        ])
    }

    #[test]
    fn text_values() {
        let c = config();
        assert_eq!(c.text("tenant"), Some("t-1"));
        assert_eq!(c.text("blank"), None);
        assert_eq!(c.text("zones"), None);
        assert_eq!(c.text("missing"), None);
        assert_eq!(c.require_text("tenant"), Ok("t-1"));
        assert_eq!(
            c.require_text("blank"),
            Err(SyncError::Config("config key \"blank\" is not set".into()))
        );
    }

    #[test]
    fn list_values() {
        let c = config();
        assert_eq!(c.list("zones"), ["fr-par-1"]);
        assert_eq!(c.list("csv"), ["a", "b", "c"]);
        assert!(c.list("missing").is_empty());
    }
}
