//! ATT error codes as seen by the application.

/// An ATT Error Response code (Bluetooth Core Vol 3 Part F §3.4.1.1).
///
/// The lock answers a GATT write or read with one of these; the guest receives the same code.
/// Protocol rejections use [`AttError::Application`] with a code in `0x80..=0x9F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AttError {
    /// `0x02`: the attribute cannot be read.
    #[error("ATT error 0x02: read not permitted")]
    ReadNotPermitted,
    /// `0x03`: the attribute cannot be written.
    #[error("ATT error 0x03: write not permitted")]
    WriteNotPermitted,
    /// `0x06`: the server does not support the request.
    #[error("ATT error 0x06: request not supported")]
    RequestNotSupported,
    /// `0x07`: offset past the end of the value (Read Blob, prepared write).
    #[error("ATT error 0x07: invalid offset")]
    InvalidOffset,
    /// `0x08`: the link lacks authorization.
    #[error("ATT error 0x08: insufficient authorization")]
    InsufficientAuthorization,
    /// `0x0A`: no attribute with that handle.
    #[error("ATT error 0x0A: attribute not found")]
    AttributeNotFound,
    /// `0x0D`: the written value has the wrong length.
    #[error("ATT error 0x0D: invalid attribute value length")]
    InvalidAttributeValueLength,
    /// `0x0E`: the request failed for an unspecified reason.
    #[error("ATT error 0x0E: unlikely error")]
    UnlikelyError,
    /// `0x80..=0x9F`: application-defined error (Latchkey rejection reasons).
    #[error("ATT application error 0x{0:02X}")]
    Application(u8),
    /// Any other code.
    #[error("ATT error 0x{0:02X}")]
    Other(u8),
}

impl AttError {
    /// First application error code.
    pub const APPLICATION_MIN: u8 = 0x80;
    /// Last application error code.
    pub const APPLICATION_MAX: u8 = 0x9F;

    /// An application error, or `None` if `code` is outside `0x80..=0x9F`.
    pub const fn application(code: u8) -> Option<Self> {
        if code >= Self::APPLICATION_MIN && code <= Self::APPLICATION_MAX {
            Some(Self::Application(code))
        } else {
            None
        }
    }

    /// The code carried in the ATT Error Response.
    pub const fn code(self) -> u8 {
        match self {
            Self::ReadNotPermitted => 0x02,
            Self::WriteNotPermitted => 0x03,
            Self::RequestNotSupported => 0x06,
            Self::InvalidOffset => 0x07,
            Self::InsufficientAuthorization => 0x08,
            Self::AttributeNotFound => 0x0A,
            Self::InvalidAttributeValueLength => 0x0D,
            Self::UnlikelyError => 0x0E,
            Self::Application(c) | Self::Other(c) => c,
        }
    }

    /// Decodes a code received on the wire (inverse of [`AttError::code`]).
    pub const fn from_code(code: u8) -> Self {
        match code {
            0x02 => Self::ReadNotPermitted,
            0x03 => Self::WriteNotPermitted,
            0x06 => Self::RequestNotSupported,
            0x07 => Self::InvalidOffset,
            0x08 => Self::InsufficientAuthorization,
            0x0A => Self::AttributeNotFound,
            0x0D => Self::InvalidAttributeValueLength,
            0x0E => Self::UnlikelyError,
            Self::APPLICATION_MIN..=Self::APPLICATION_MAX => Self::Application(code),
            _ => Self::Other(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in 0..=u8::MAX {
            assert_eq!(AttError::from_code(code).code(), code);
        }
    }

    #[test]
    fn application_range_is_0x80_to_0x9f() {
        assert_eq!(AttError::application(0x7F), None);
        assert_eq!(
            AttError::application(0x80),
            Some(AttError::Application(0x80))
        );
        assert_eq!(
            AttError::application(0x9F),
            Some(AttError::Application(0x9F))
        );
        assert_eq!(AttError::application(0xA0), None);
        assert_eq!(AttError::from_code(0x85), AttError::Application(0x85));
        assert_eq!(AttError::from_code(0xA0), AttError::Other(0xA0));
        assert_eq!(
            AttError::Application(0x8A).to_string(),
            "ATT application error 0x8A"
        );
    }
}
