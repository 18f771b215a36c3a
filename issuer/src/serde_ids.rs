//! Serde helpers: identifiers as lowercase hex strings, their protocol text form.

use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serializer, de};

/// `#[serde(with = "hexid")]` for one identifier.
pub(crate) mod hexid {
    use super::*;

    pub(crate) fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// `#[serde(with = "hexids")]` for a list of identifiers.
pub(crate) mod hexids {
    use super::*;
    use serde::ser::SerializeSeq;

    pub(crate) fn serialize<'a, T, I, S>(v: I, s: S) -> Result<S::Ok, S::Error>
    where
        T: Display + 'a,
        I: IntoIterator<Item = &'a T>,
        S: Serializer,
    {
        let mut seq = s.serialize_seq(None)?;
        for id in v {
            seq.serialize_element(&id.to_string())?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, T, C, D>(d: D) -> Result<C, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        C: FromIterator<T>,
        D: Deserializer<'de>,
    {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| s.parse().map_err(de::Error::custom))
            .collect()
    }
}
