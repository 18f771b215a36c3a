//! A bounds-checked reader for the variable-length MQTT messages.

use crate::Reason;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Reason> {
        let end = self.pos.checked_add(n).ok_or(Reason::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Reason::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Reason> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Reason> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Reason> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Reason> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Reason> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Version and type bytes (LK-FRM-2, LK-FRM-3).
    pub(crate) fn header(&mut self, ty: super::MessageType) -> Result<(), Reason> {
        if self.u8()? != crate::constants::VERSION {
            return Err(Reason::UnsupportedVersion);
        }
        if self.u8()? != ty as u8 {
            return Err(Reason::WrongType);
        }
        Ok(())
    }

    /// A u16 length (checked against `range`, LK-FRM-4) followed by that many bytes.
    pub(crate) fn len_prefixed(
        &mut self,
        range: core::ops::RangeInclusive<usize>,
    ) -> Result<&'a [u8], Reason> {
        let n = self.u16()? as usize;
        if !range.contains(&n) {
            return Err(Reason::FieldOutOfRange);
        }
        self.take(n)
    }

    /// LK-FRM-1: nothing may follow the last field.
    pub(crate) fn finish(self) -> Result<(), Reason> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(Reason::TrailingBytes)
        }
    }
}
