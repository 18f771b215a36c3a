//! The HCI trace as btmon decoded it live inside the machine (`logs/btmon.log`; the raw
//! `hci.snoop` beside it is for Wireshark: Debian 12's `btmon -r` segfaults reading these
//! traces back), and the advertising-data commands found in it.

use std::fs;
use std::path::Path;

/// One HCI packet as btmon prints it: the header line and its indented body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The header line (`< HCI Command: …`).
    pub header: String,
    /// The controller index (`[hci1]` → 1), when shown.
    pub index: Option<u8>,
    /// The body lines, trimmed.
    pub body: Vec<String>,
}

/// A decoded trace.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Packets in order.
    pub packets: Vec<Packet>,
}

/// An advertising-data command and what the controller answered.
#[derive(Debug, Clone)]
pub struct AdvDataSet {
    /// The controller it was sent to.
    pub index: u8,
    /// The command's decoded body.
    pub text: String,
    /// Length of the advertising data (`Length:` / `Data length:`).
    pub data_len: Option<usize>,
    /// Whether the controller completed it with Success.
    pub status_ok: bool,
    /// Whether the set is sent as a legacy PDU (a legacy command, or extended advertising
    /// parameters with "Use legacy advertising PDUs").
    pub legacy_pdu: bool,
    /// The advertising interval set for it, in ms (the minimum).
    pub interval_ms: Option<f64>,
}

impl AdvDataSet {
    /// Whether the data carries the Flags AD structure.
    pub fn has_flags(&self) -> bool {
        self.text
            .lines()
            .any(|l| l.trim_start().starts_with("Flags:"))
    }
}

/// Reads btmon's decoded output; `None` if it is missing or empty.
pub fn read(decoded: &Path) -> Option<Trace> {
    let text = fs::read_to_string(decoded).ok()?;
    let trace = Trace::parse(&text);
    (!trace.packets.is_empty()).then_some(trace)
}

impl Trace {
    /// Parses btmon's text: a packet starts with a direction marker in column 0.
    pub fn parse(text: &str) -> Self {
        let mut packets: Vec<Packet> = Vec::new();
        for line in text.lines() {
            let starts_packet = matches!(line.chars().next(), Some('<' | '>' | '@' | '='));
            if starts_packet {
                packets.push(Packet {
                    header: line.trim_end().to_owned(),
                    index: index_of(line),
                    body: Vec::new(),
                });
            } else if let Some(p) = packets.last_mut()
                && !line.trim().is_empty()
            {
                p.body.push(line.trim().to_owned());
            }
        }
        Self { packets }
    }

    /// Every LE Set (Extended) Advertising Data command with its completion and the
    /// parameters set before it on the same controller. Commands are matched by opcode:
    /// btmon shortens names to fit its (80-column, when not on a terminal) header.
    pub fn adv_data_sets(&self) -> Vec<AdvDataSet> {
        let mut out = Vec::new();
        for (i, p) in self.packets.iter().enumerate() {
            let Some(index) = p.index else { continue };
            let legacy = if p.header.contains(LEGACY_DATA) {
                true
            } else if p.header.contains(EXT_DATA) {
                false
            } else {
                continue;
            };
            let opcode = if legacy { LEGACY_DATA } else { EXT_DATA };
            let data_len = p.body.iter().find_map(|l| {
                let v = l
                    .strip_prefix("Length: ")
                    .or_else(|| l.strip_prefix("Data length: "))?;
                parse_number(v)
            });
            let status_ok = self.packets[i + 1..]
                .iter()
                .find(|q| {
                    q.index == Some(index)
                        && q.header.contains("Command Complete")
                        && q.body.first().is_some_and(|b| b.contains(opcode))
                })
                .is_some_and(|q| q.body.iter().any(|b| b.starts_with("Status: Success")));
            let params = self.packets[..i].iter().rev().find(|q| {
                q.index == Some(index)
                    && q.header.starts_with('<')
                    && (q.header.contains(EXT_PARAMS) || q.header.contains(LEGACY_PARAMS))
            });
            let legacy_pdu = legacy
                || params.is_some_and(|q| {
                    q.body
                        .iter()
                        .any(|b| b.contains("Use legacy advertising PDUs"))
                });
            let interval_ms = params.and_then(|q| {
                q.body.iter().find_map(|b| {
                    let v = b.strip_prefix("Min advertising interval: ")?;
                    v.split_whitespace().next()?.parse().ok()
                })
            });
            out.push(AdvDataSet {
                index,
                text: p.body.join("\n"),
                data_len,
                status_ok,
                legacy_pdu,
                interval_ms,
            });
        }
        out
    }
}

/// HCI opcodes as btmon prints them.
const LEGACY_PARAMS: &str = "(0x08|0x0006)";
const LEGACY_DATA: &str = "(0x08|0x0008)";
const EXT_PARAMS: &str = "(0x08|0x0036)";
const EXT_DATA: &str = "(0x08|0x0037)";

fn index_of(header: &str) -> Option<u8> {
    let start = header.find("[hci")? + 4;
    let rest = &header[start..];
    let end = rest.find(']')?;
    rest[..end].parse().ok()
}

/// `31`, `0x1f` or `0x1f (31)`.
fn parse_number(s: &str) -> Option<usize> {
    let first = s.split_whitespace().next()?;
    match first.strip_prefix("0x") {
        Some(hex) => usize::from_str_radix(hex, 16).ok(),
        None => first.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Excerpts of a real trace (bluetoothd 5.66, btvirt 5.82, the guest on hci1).
    const TRACE: &str = "\
< HCI Command: LE Set Extended Adv.. (0x08|0x0036) plen 25  #21 [hci1] 1.513724
        Handle: 0x01
        Properties: 0x0010
          Use legacy advertising PDUs: ADV_NONCONN_IND
        Min advertising interval: 100.000 msec (0x00a0)
        Max advertising interval: 100.000 msec (0x00a0)
> HCI Event: Command Complete (0x0e) plen 5                 #22 [hci1] 1.513870
      LE Set Extended Advertising Parameters (0x08|0x0036) ncmd 1
        Status: Success (0x00)
< HCI Command: LE Set Extended Adv.. (0x08|0x0037) plen 34  #25 [hci1] 1.514901
        Handle: 0x01
        Operation: Complete extended advertising data (0x03)
        Fragment preference: Minimize fragmentation (0x01)
        Data length: 0x1e
        Flags: 0x06
          LE General Discoverable Mode
          BR/EDR Not Supported
        Company: internal use (65535)
          Data: 010391474caf165151c0c68de73284df0f1a5bcbf55dcd
> HCI Event: LE Meta Event (0x3e) plen 53                   #35 [hci0] 1.515315
      LE Extended Advertising Report (0x0d)
> HCI Event: Command Complete (0x0e) plen 4                 #26 [hci1] 1.515019
      LE Set Extended Advertising Data (0x08|0x0037) ncmd 1
        Status: Success (0x00)
< HCI Command: LE Set Advertising Data (0x08|0x0008) plen 32  #40 [hci0] 2.0
        Length: 3
        Flags: 0x06
> HCI Event: Command Complete (0x0e) plen 4                 #41 [hci0] 2.1
      LE Set Advertising Data (0x08|0x0008) ncmd 1
        Status: Invalid HCI Command Parameters (0x12)
";

    #[test]
    fn extended_and_legacy_data_sets_are_found_with_their_completion_and_parameters() {
        let t = Trace::parse(TRACE);
        assert_eq!(t.packets.len(), 7);
        let sets = t.adv_data_sets();
        assert_eq!(sets.len(), 2);
        let ext = &sets[0];
        assert_eq!(ext.index, 1);
        assert_eq!(ext.data_len, Some(30));
        assert!(ext.status_ok && ext.legacy_pdu && ext.has_flags());
        assert_eq!(ext.interval_ms, Some(100.0));
        assert!(ext.text.contains("(65535)"));
        let legacy = &sets[1];
        assert_eq!(legacy.index, 0);
        assert_eq!(legacy.data_len, Some(3));
        assert!(legacy.legacy_pdu && !legacy.status_ok);
        assert_eq!(legacy.interval_ms, None);
    }

    #[test]
    fn numbers_and_indexes_parse() {
        assert_eq!(parse_number("0x1f"), Some(31));
        assert_eq!(parse_number("31"), Some(31));
        assert_eq!(parse_number("x"), None);
        assert_eq!(index_of("> HCI Event: x #1 [hci12] 0.1"), Some(12));
        assert_eq!(index_of("@ RAW Open: btmon"), None);
    }
}
