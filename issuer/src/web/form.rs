//! Submitted forms and query strings: parsed by hand (`application/x-www-form-urlencoded`),
//! so that no input can make an extractor answer with a bare 4xx/5xx, and every field is
//! checked here with a message the form shows next to it.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::timefmt;

/// The fields of a form body or a query string, in order (a repeated name is kept).
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses `a=1&b=x+y` (percent-decoding; invalid UTF-8 becomes U+FFFD).
    pub fn parse(raw: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(raw)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; `None` if absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first value of `name` as it was sent (passwords are not trimmed).
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every non-blank value of `name`.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Messages per field, shown next to it when a form is rendered again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    /// Records `message` for `field` (the first message of a field wins).
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    /// The message for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// No message at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every (field, message), by field name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(f, m)| (*f, m.as_str()))
    }

    /// Takes the value of `result`, or records its error for `field`.
    pub fn take<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }
}

/// A display name: 1..=`max` characters, no control characters (so a log line or a CSV
/// export cannot be split), surrounding blanks removed.
pub fn name(value: Option<&str>, what: &str, max: usize) -> Result<String, String> {
    let Some(v) = value else {
        return Err(format!("enter a {what}"));
    };
    let count = v.chars().count();
    if count > max {
        return Err(format!(
            "{what} is {count} characters long; at most {max} are allowed"
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(v.to_owned())
}

/// An optional identifier in its hex text form.
pub fn optional_id<T: FromStr>(value: Option<&str>, what: &str) -> Result<Option<T>, String> {
    value.map(|v| required_id(v, what)).transpose()
}

/// An identifier in its hex text form.
pub fn required_id<T: FromStr>(value: &str, what: &str) -> Result<T, String> {
    value.parse::<T>().map_err(|_| {
        let shown: String = value.chars().take(40).collect();
        format!("{shown:?} is not a {what} id (lowercase hex)")
    })
}

/// An optional whole number in `min..=max`.
pub fn optional_number(
    value: Option<&str>,
    what: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, String> {
    let Some(v) = value else { return Ok(None) };
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(format!("{what} must be a whole number from {min} to {max}")),
    }
}

/// An optional UTC date and time, as Unix ms.
pub fn optional_time(value: Option<&str>) -> Result<Option<u64>, String> {
    value.map(timefmt::parse_utc).transpose()
}

/// An optional single-line text of at most `max` characters.
pub fn optional_text(
    value: Option<&str>,
    what: &str,
    max: usize,
) -> Result<Option<String>, String> {
    value.map(|v| name(Some(v), what, max)).transpose()
}

/// An optional snake_case word (audit kinds, reason names) of at most 64 bytes.
pub fn optional_word(value: Option<&str>, what: &str) -> Result<Option<String>, String> {
    let Some(v) = value else { return Ok(None) };
    if v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(Some(v.to_owned()))
    } else {
        Err(format!(
            "{what} must be a snake_case word such as grant_revoked"
        ))
    }
}

/// A page number (1-based; absent: 1).
pub fn page_number(value: Option<&str>) -> Result<u64, String> {
    optional_number(value, "page", 1, 1_000_000).map(|p| p.unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use latchkey::GuestId;

    use super::*;

    #[test]
    fn fields_are_percent_decoded_and_repeated_names_kept() {
        let f = Fields::parse(b"name=%3Cscript%3E+x&locks=a&locks=b&blank=+&pw=+x+");
        assert_eq!(f.get("name"), Some("<script> x"));
        assert_eq!(f.get_all("locks").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(f.get("blank"), None);
        assert_eq!(f.get_raw("pw"), Some(" x "));
        assert_eq!(f.get("absent"), None);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let f = Fields::parse(b"name=%FF%FE");
        assert_eq!(f.get("name"), Some("\u{fffd}\u{fffd}"));
    }

    #[test]
    fn names_are_bounded_and_free_of_control_characters() {
        assert_eq!(name(Some("Ann"), "name", 5), Ok("Ann".into()));
        assert!(name(None, "name", 5).is_err());
        assert!(name(Some("abcdef"), "name", 5).is_err());
        assert!(name(Some("a\nb"), "name", 5).is_err());
        assert_eq!(
            name(Some("ééééé"), "name", 5),
            Ok("ééééé".into()),
            "characters, not bytes"
        );
    }

    #[test]
    fn ids_numbers_and_words_are_checked() {
        let id: Result<Option<GuestId>, _> = optional_id(Some(&"ab".repeat(16)), "guest");
        assert!(matches!(id, Ok(Some(_))));
        let bad: Result<Option<GuestId>, _> = optional_id(Some("AB"), "guest");
        assert!(bad.is_err());
        assert_eq!(optional_number(Some("7"), "n", 1, 9), Ok(Some(7)));
        assert!(optional_number(Some("0"), "n", 1, 9).is_err());
        assert!(optional_number(Some("-1"), "n", 1, 9).is_err());
        assert!(optional_number(Some("99999999999999999999999"), "n", 1, 9).is_err());
        assert_eq!(
            optional_word(Some("grant_revoked"), "kind"),
            Ok(Some("grant_revoked".into()))
        );
        assert!(optional_word(Some("Grant"), "kind").is_err());
        assert_eq!(page_number(None), Ok(1));
        assert!(page_number(Some("0")).is_err());
    }

    #[test]
    fn the_first_error_of_a_field_is_kept() {
        let mut e = FieldErrors::default();
        assert_eq!(e.take::<u8>("a", Err("first".into())), None);
        e.add("a", "second");
        assert_eq!(e.get("a"), Some("first"));
        assert!(!e.is_empty());
    }
}
