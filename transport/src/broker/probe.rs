//! A minimal blocking MQTT 3.1.1 client used once, to prove the broker we started is the
//! one answering on the port.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_millis(500);

/// Connects, expects a successful CONNACK, publishes `payload` on `topic` at QoS 0 and
/// disconnects. Returns a short reason on failure.
pub(crate) fn connect_and_publish(
    addr: SocketAddr,
    client_id: &str,
    topic: &str,
    payload: &[u8],
) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| format!("TCP connect failed: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| format!("socket setup failed: {e}"))?;

    stream
        .write_all(&connect_packet(client_id))
        .map_err(|e| format!("sending CONNECT failed: {e}"))?;
    let mut connack = [0u8; 4];
    stream
        .read_exact(&mut connack)
        .map_err(|e| format!("no CONNACK: {e}"))?;
    if connack[0] != 0x20 || connack[1] != 0x02 {
        return Err(format!("not an MQTT CONNACK: {connack:02x?}"));
    }
    if connack[3] != 0 {
        return Err(format!("CONNECT refused with return code {}", connack[3]));
    }

    let mut out = publish_packet(topic, payload);
    out.extend_from_slice(&[0xE0, 0x00]); // DISCONNECT
    stream
        .write_all(&out)
        .map_err(|e| format!("sending PUBLISH failed: {e}"))?;
    Ok(())
}

fn connect_packet(client_id: &str) -> Vec<u8> {
    // Protocol name "MQTT", level 4 (3.1.1), flags: clean session, keep-alive 10 s.
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A];
    put_str(&mut body, client_id);
    frame(0x10, &body)
}

fn publish_packet(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 + topic.len() + payload.len());
    put_str(&mut body, topic);
    body.extend_from_slice(payload);
    frame(0x30, &body)
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    // Callers pass short ASCII strings; MQTT strings are u16-length-prefixed.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

fn frame(header: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![header];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_packet_layout() {
        let p = connect_packet("ab");
        assert_eq!(
            p,
            [
                0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 10, 0, 2, b'a', b'b'
            ]
        );
    }

    #[test]
    fn remaining_length_is_varint() {
        let p = frame(0x30, &[0u8; 200]);
        assert_eq!(&p[..3], &[0x30, 0xC8, 0x01]);
        assert_eq!(p.len(), 203);
    }
}
