//! The text form of a schedule, for the CLI (`--schedule`) and web forms.
//!
//! ```text
//! schedule := "always" | entry { sep entry }          sep := ";" | newline
//! entry    := days ranges
//! days     := "daily" | dayspec { "," dayspec }
//! dayspec  := day | day "-" day                       Fri-Mon wraps: Fri, Sat, Sun, Mon
//! day      := Mon | Tue | Wed | Thu | Fri | Sat | Sun   (or full names; any case)
//! ranges   := range { "," range }
//! range    := time "-" time                           end < start: ends the next day
//! time     := H:MM | HH:MM                            00:00..23:59; 24:00 only as an end
//! ```
//!
//! Spaces and tabs may stand between any two tokens; empty entries are skipped. Entries
//! add up (their union is the schedule).

use super::{ClockTime, Day, SlotRangeError, WeekMinutes, WeeklySchedule, range_length};

/// Longest schedule text accepted, in characters.
pub const MAX_SCHEDULE_LEN: usize = 2_048;

/// Why a schedule text does not parse. `at` is the 1-based character position of the
/// offending token; `found` quotes it (at most 24 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleParseError {
    /// Nothing but spaces and separators.
    #[error(
        "the schedule is empty: write e.g. \"Mon-Fri 08:00-18:00; Sat 09:00-12:00\", \
         \"daily 22:00-06:00\" or \"always\""
    )]
    Empty,
    /// Longer than [`MAX_SCHEDULE_LEN`].
    #[error("the schedule is {len} characters long; at most {max} are accepted", max = MAX_SCHEDULE_LEN)]
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// A character that belongs to no token.
    #[error(
        "at character {at}: unexpected {found:?}; a schedule has day names, times HH:MM, \
         '-', ',' and ';'"
    )]
    UnexpectedChar {
        /// Position (from 1).
        at: usize,
        /// The character.
        found: char,
    },
    /// A word that is not a day name.
    #[error(
        "at character {at}: {found:?} is not a day: use Mon, Tue, Wed, Thu, Fri, Sat, Sun \
         (or full names), \"daily\", or \"always\" alone"
    )]
    UnknownDay {
        /// Position (from 1).
        at: usize,
        /// The word.
        found: String,
    },
    /// Digits that are not a time of day.
    #[error(
        "at character {at}: {found:?} is not a time: write HH:MM with hours 00-23 and \
         minutes 00-59 (24:00 only as the end of a range)"
    )]
    BadTime {
        /// Position (from 1).
        at: usize,
        /// The text.
        found: String,
    },
    /// A token where another was expected.
    #[error("at character {at}: expected {expected}, found {found}")]
    Expected {
        /// Position (from 1).
        at: usize,
        /// What the grammar allows here.
        expected: &'static str,
        /// What is there (quoted), or "the end".
        found: String,
    },
    /// A range whose start equals its end.
    #[error("at character {at}: the range {start}-{end} is empty; use 00:00-24:00 for a whole day")]
    EmptyRange {
        /// Position of the range (from 1).
        at: usize,
        /// Its start.
        start: ClockTime,
        /// Its end.
        end: ClockTime,
    },
    /// A range starting at 24:00.
    #[error("at character {at}: 24:00 can only end a range; start at 00:00 instead")]
    StartsAtEndOfDay {
        /// Position of the range (from 1).
        at: usize,
    },
    /// `always` together with other entries or tokens.
    #[error("at character {at}: \"always\" must be the whole schedule")]
    AlwaysNotAlone {
        /// Position (from 1).
        at: usize,
    },
}

/// Parses the text form into a schedule; never panics, whatever the input.
pub(super) fn parse(text: &str) -> Result<WeeklySchedule, ScheduleParseError> {
    let len = text.chars().count();
    if len > MAX_SCHEDULE_LEN {
        return Err(ScheduleParseError::TooLong { len });
    }
    let tokens = lex(text)?;
    let entries: Vec<&[Token]> = tokens
        .split(|t| t.kind == Kind::Sep)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Err(ScheduleParseError::Empty);
    }
    if let Some(always) = tokens.iter().find(|t| t.is_word("always")) {
        return match entries.as_slice() {
            [[only]] if only.is_word("always") => Ok(WeeklySchedule::always()),
            _ => Err(ScheduleParseError::AlwaysNotAlone { at: always.at }),
        };
    }
    let mut minutes = WeekMinutes::default();
    for entry in entries {
        let mut p = Parser {
            tokens: entry,
            pos: 0,
        };
        let days = p.days()?;
        for (start, len) in p.ranges()? {
            for day in &days {
                minutes.insert(day.first_minute() + start.minutes(), len);
            }
        }
    }
    Ok(minutes.into_schedule())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A word, lower-cased.
    Word(String),
    Time(ClockTime),
    Dash,
    Comma,
    Sep,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// 1-based character position.
    at: usize,
    /// The source text, for messages.
    text: String,
}

impl Token {
    fn is_word(&self, w: &str) -> bool {
        matches!(&self.kind, Kind::Word(x) if x == w)
    }
}

/// At most this many characters of a token are quoted in an error.
const QUOTE_LEN: usize = 24;

fn lex(text: &str) -> Result<Vec<Token>, ScheduleParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let at = i + 1;
        let single = |kind| Token {
            kind,
            at,
            text: c.to_string(),
        };
        match c {
            ' ' | '\t' | '\r' => i += 1,
            '\n' | ';' => {
                tokens.push(single(Kind::Sep));
                i += 1;
            }
            '-' => {
                tokens.push(single(Kind::Dash));
                i += 1;
            }
            ',' => {
                tokens.push(single(Kind::Comma));
                i += 1;
            }
            c if c.is_ascii_alphabetic() => {
                let word = take_while(&chars, &mut i, |c| c.is_ascii_alphabetic());
                tokens.push(Token {
                    kind: Kind::Word(word.to_ascii_lowercase()),
                    at,
                    text: quote(&word),
                });
            }
            c if c.is_ascii_digit() => {
                let raw = take_while(&chars, &mut i, |c| c.is_ascii_digit() || c == ':');
                let time = raw
                    .parse::<ClockTime>()
                    .map_err(|_| ScheduleParseError::BadTime {
                        at,
                        found: quote(&raw),
                    })?;
                tokens.push(Token {
                    kind: Kind::Time(time),
                    at,
                    text: quote(&raw),
                });
            }
            found => return Err(ScheduleParseError::UnexpectedChar { at, found }),
        }
    }
    Ok(tokens)
}

fn take_while(chars: &[char], i: &mut usize, keep: impl Fn(char) -> bool) -> String {
    let start = *i;
    while chars.get(*i).is_some_and(|&c| keep(c)) {
        *i += 1;
    }
    chars.get(start..*i).unwrap_or_default().iter().collect()
}

fn quote(s: &str) -> String {
    s.chars().take(QUOTE_LEN).collect()
}

/// One entry's tokens (no separators).
struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    fn expected(&self, expected: &'static str) -> ScheduleParseError {
        match self.peek() {
            Some(t) => ScheduleParseError::Expected {
                at: t.at,
                expected,
                found: format!("{:?}", t.text),
            },
            None => ScheduleParseError::Expected {
                at: self
                    .tokens
                    .last()
                    .map_or(1, |t| t.at + t.text.chars().count()),
                expected,
                found: "the end".into(),
            },
        }
    }

    /// `days := "daily" | dayspec { "," dayspec }`
    fn days(&mut self) -> Result<Vec<Day>, ScheduleParseError> {
        if self.peek().is_some_and(|t| t.is_word("daily")) {
            self.pos += 1;
            return Ok(Day::ALL.to_vec());
        }
        let mut days = Vec::new();
        loop {
            let first = self.day()?;
            if self.peek().is_some_and(|t| t.kind == Kind::Dash) {
                self.pos += 1;
                let last = self.day()?;
                let n = (usize::from(last.index()) + 7 - usize::from(first.index())) % 7;
                days.extend((0..=n).map(|k| Day::from_index(usize::from(first.index()) + k)));
            } else {
                days.push(first);
            }
            // A comma followed by a day continues the list; before a time it is an error
            // the range parser reports.
            match (self.peek(), self.tokens.get(self.pos + 1)) {
                (
                    Some(c),
                    Some(Token {
                        kind: Kind::Word(_),
                        ..
                    }),
                ) if c.kind == Kind::Comma => {
                    self.pos += 1;
                }
                _ => return Ok(days),
            }
        }
    }

    fn day(&mut self) -> Result<Day, ScheduleParseError> {
        let Some(t) = self.peek() else {
            return Err(self.expected("a day name"));
        };
        match &t.kind {
            Kind::Word(w) => {
                let day = Day::from_name(w).ok_or_else(|| ScheduleParseError::UnknownDay {
                    at: t.at,
                    found: t.text.clone(),
                })?;
                self.pos += 1;
                Ok(day)
            }
            _ => Err(self.expected("a day name (Mon..Sun), \"daily\" or \"always\"")),
        }
    }

    /// `ranges := range { "," range }` up to the end of the entry: (start, length) pairs.
    fn ranges(&mut self) -> Result<Vec<(ClockTime, u16)>, ScheduleParseError> {
        let mut out = vec![self.range()?];
        while let Some(t) = self.peek() {
            if t.kind != Kind::Comma {
                return Err(self.expected("',' and another range, or ';' before the next days"));
            }
            self.pos += 1;
            if self.peek().is_some_and(|t| matches!(t.kind, Kind::Word(_))) {
                return Err(self.expected("a time range after ','; start the next days after ';'"));
            }
            out.push(self.range()?);
        }
        Ok(out)
    }

    /// `range := time "-" time`
    fn range(&mut self) -> Result<(ClockTime, u16), ScheduleParseError> {
        let at = self.peek().map(|t| t.at);
        let start = self.time("a time range HH:MM-HH:MM")?;
        match self.peek() {
            Some(t) if t.kind == Kind::Dash => self.pos += 1,
            _ => return Err(self.expected("'-' and the end time")),
        }
        let end = self.time("the end time HH:MM")?;
        let at = at.unwrap_or(1);
        match range_length(start, end) {
            Ok(len) => Ok((start, len)),
            Err(SlotRangeError::Empty) => Err(ScheduleParseError::EmptyRange { at, start, end }),
            Err(SlotRangeError::StartsAtEndOfDay) => {
                Err(ScheduleParseError::StartsAtEndOfDay { at })
            }
        }
    }

    fn time(&mut self, expected: &'static str) -> Result<ClockTime, ScheduleParseError> {
        match self.peek().map(|t| &t.kind) {
            Some(Kind::Time(t)) => {
                let t = *t;
                self.next();
                Ok(t)
            }
            _ => Err(self.expected(expected)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::schedule::Run;

    fn runs(text: &str) -> Vec<(u16, u16)> {
        WeeklySchedule::parse(text)
            .unwrap()
            .runs()
            .iter()
            .map(|r| (r.start, r.len))
            .collect()
    }

    const H: u16 = 60;
    const D: u16 = 1_440;

    #[test]
    fn weekdays_and_weekend_entries_add_up() {
        let s = runs("Mon-Fri 08:00-18:00; Sat,Sun 10:00-12:30");
        let mut expected: Vec<(u16, u16)> = (0..5).map(|d| (d * D + 8 * H, 10 * H)).collect();
        expected.push((5 * D + 10 * H, 150));
        expected.push((6 * D + 10 * H, 150));
        assert_eq!(s, expected);
    }

    #[test]
    fn daily_crossing_midnight_joins_sunday_night_to_monday_morning() {
        // Seven slots of 8 h, each from 22:00 to 06:00 the next day.
        let s = runs("daily 22:00-06:00");
        let expected: Vec<(u16, u16)> = (0..7).map(|d| (d * D + 22 * H, 8 * H)).collect();
        assert_eq!(s, expected);
    }

    #[test]
    fn always_is_the_whole_week_and_must_stand_alone() {
        assert!(WeeklySchedule::parse("always").unwrap().is_always());
        assert!(WeeklySchedule::parse("  ALWAYS ; ").unwrap().is_always());
        assert_eq!(
            WeeklySchedule::parse("always; Mon 08:00-09:00"),
            Err(ScheduleParseError::AlwaysNotAlone { at: 1 })
        );
        assert_eq!(
            WeeklySchedule::parse("Mon always"),
            Err(ScheduleParseError::AlwaysNotAlone { at: 5 })
        );
    }

    #[test]
    fn day_ranges_wrap_around_the_week() {
        assert_eq!(
            runs("Fri-Mon 09:00-10:00"),
            runs("Mon,Fri,Sat,Sun 09:00-10:00")
        );
        assert_eq!(runs("Wed-Wed 09:00-10:00"), runs("Wed 09:00-10:00"));
    }

    #[test]
    fn full_names_case_spaces_and_newlines_are_accepted() {
        assert_eq!(
            runs("monday - FRIDAY  8:00 - 12:00 , 13:00-17:00\nSaturday 09:00-10:00;"),
            runs("Mon-Fri 08:00-12:00,13:00-17:00; Sat 09:00-10:00")
        );
    }

    #[test]
    fn a_range_ending_at_24_00_or_00_00_ends_at_midnight() {
        assert_eq!(runs("Mon 20:00-24:00"), vec![(20 * H, 4 * H)]);
        assert_eq!(runs("Mon 20:00-00:00"), vec![(20 * H, 4 * H)]);
        assert_eq!(runs("Mon 00:00-24:00"), vec![(0, D)]);
    }

    #[test]
    fn parse_errors_say_where_and_what() {
        use ScheduleParseError as E;
        assert_eq!(WeeklySchedule::parse(""), Err(E::Empty));
        assert_eq!(WeeklySchedule::parse(" ; \n ;"), Err(E::Empty));
        assert_eq!(
            WeeklySchedule::parse("Mon-Fry 08:00-18:00"),
            Err(E::UnknownDay {
                at: 5,
                found: "Fry".into()
            })
        );
        assert_eq!(
            WeeklySchedule::parse("Mon 08:00-25:00"),
            Err(E::BadTime {
                at: 11,
                found: "25:00".into()
            })
        );
        assert_eq!(
            WeeklySchedule::parse("Mon 08:00-08:00"),
            Err(E::EmptyRange {
                at: 5,
                start: ClockTime::new(8, 0).unwrap(),
                end: ClockTime::new(8, 0).unwrap()
            })
        );
        assert_eq!(
            WeeklySchedule::parse("Mon 24:00-06:00"),
            Err(E::StartsAtEndOfDay { at: 5 })
        );
        assert_eq!(
            WeeklySchedule::parse("Mon 08:00"),
            Err(E::Expected {
                at: 10,
                expected: "'-' and the end time",
                found: "the end".into()
            })
        );
        assert_eq!(
            WeeklySchedule::parse("08:00-09:00"),
            Err(E::Expected {
                at: 1,
                expected: "a day name (Mon..Sun), \"daily\" or \"always\"",
                found: "\"08:00\"".into()
            })
        );
        assert_eq!(
            WeeklySchedule::parse("Mon"),
            Err(E::Expected {
                at: 4,
                expected: "a time range HH:MM-HH:MM",
                found: "the end".into()
            })
        );
        assert_eq!(
            WeeklySchedule::parse("Mon 08:00-09:00, Tue 10:00-11:00"),
            Err(E::Expected {
                at: 18,
                expected: "a time range after ','; start the next days after ';'",
                found: "\"Tue\"".into()
            })
        );
        assert_eq!(
            WeeklySchedule::parse("Mon 08:00-09:00 Tue 10:00-11:00"),
            Err(E::Expected {
                at: 17,
                expected: "',' and another range, or ';' before the next days",
                found: "\"Tue\"".into()
            })
        );
        assert_eq!(
            WeeklySchedule::parse("Mon 08:00–09:00"),
            Err(E::UnexpectedChar {
                at: 10, found: '–'
            })
        );
        let long = "Mon 08:00-09:00;".repeat(200);
        assert_eq!(WeeklySchedule::parse(&long), Err(E::TooLong { len: 3_200 }));
        let msg = WeeklySchedule::parse("Mon 08:00-25:00")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("character 11") && msg.contains("25:00"),
            "{msg}"
        );
    }

    #[test]
    fn errors_quote_at_most_a_short_excerpt() {
        let word = "x".repeat(500);
        match WeeklySchedule::parse(&word) {
            Err(ScheduleParseError::UnknownDay { at: 1, found }) => assert_eq!(found.len(), 24),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn runs_are_what_the_slot_form_builds() {
        let from_text = WeeklySchedule::parse("Sun 23:00-01:00").unwrap();
        assert_eq!(
            from_text.runs(),
            &[Run {
                start: 6 * D + 23 * H,
                len: 2 * H
            }]
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = WeeklySchedule::parse(&s);
        }

        #[test]
        fn schedule_like_text_never_panics(
            s in "[MTWFSaouehrit ,;:\\-0-9\n]{0,120}"
        ) {
            let _ = WeeklySchedule::parse(&s);
        }
    }
}
