//! Identifier shapes, after Neo4j's naming conventions.

/// `ScalewayInstance`: an ASCII capital, then letters and digits.
pub fn is_pascal_case(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && s.len() <= 128
}

/// `scaleway`, `azure-ad`: a plugin's name, kebab-case (ASCII lower-case letters, digits
/// and `-`), starting with a letter, at most 64 bytes.
pub fn is_plugin_name(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `MEMBER_OF`: ASCII capitals, digits and single underscores, starting with a capital.
pub fn is_screaming_snake_case(s: &str) -> bool {
    shaped(
        s,
        |c| c.is_ascii_uppercase(),
        |c| c.is_ascii_uppercase() || c.is_ascii_digit(),
    )
}

/// `created_at`: ASCII lower-case letters, digits and single underscores, starting with a
/// letter.
pub fn is_snake_case(s: &str) -> bool {
    shaped(
        s,
        |c| c.is_ascii_lowercase(),
        |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
    )
}

fn shaped(s: &str, first: impl Fn(char) -> bool, rest: impl Fn(char) -> bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if first(c))
        && s.len() <= 128
        && !s.ends_with('_')
        && !s.contains("__")
        && chars.all(|c| c == '_' || rest(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(is_pascal_case("ScalewayInstance"));
        assert!(is_pascal_case("EC2Instance"));
        assert!(!is_pascal_case("scalewayInstance"));
        assert!(!is_pascal_case("Scaleway Instance"));
        assert!(!is_pascal_case("Label`) DETACH DELETE n //"));
        assert!(is_screaming_snake_case("MEMBER_OF"));
        assert!(!is_screaming_snake_case("MEMBER__OF"));
        assert!(!is_screaming_snake_case("member_of"));
        assert!(is_snake_case("created_at"));
        assert!(is_snake_case("ipv4"));
        assert!(!is_snake_case("createdAt"));
        assert!(!is_snake_case("_source"));
        assert!(!is_snake_case(""));
        assert!(!is_snake_case("a_"));
    }
}
