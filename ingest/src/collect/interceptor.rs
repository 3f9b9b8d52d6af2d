//! Interceptors: per-event steps between a source and its channels. A regex filter keeps or
//! drops lines (a configured, counted drop), timestamp and host headers annotate them, an
//! extractor copies a regex capture into a header (for routing), and the validator checks
//! the SPEC §1 format and marks bad lines as dead letters with the parser's reason — they
//! continue to the channel and end in the dead-letter sink, never silently dropped.

use regex::bytes::Regex;

use super::Event;
use crate::event::Format;

/// What an interceptor decided for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Continue to the next interceptor.
    Keep,
    /// Drop (a filter's decision; counted).
    Drop,
}

/// One configured interceptor.
#[derive(Debug, Clone)]
pub enum Interceptor {
    /// Keeps lines matching `regex` (or, with `exclude`, drops them).
    Filter {
        /// The pattern.
        regex: Regex,
        /// Drop matching lines instead of keeping them.
        exclude: bool,
    },
    /// Sets `header` to the collection time in epoch milliseconds.
    Timestamp {
        /// Header name.
        header: String,
    },
    /// Sets `header` to this host's name.
    Host {
        /// Header name.
        header: String,
        /// The value.
        value: String,
    },
    /// Copies capture group 1 of `regex` into `header` (absent if no match).
    Extract {
        /// The pattern.
        regex: Regex,
        /// Header name.
        header: String,
    },
    /// Marks lines that are not valid `format` records as dead letters.
    Validate {
        /// The expected SPEC §1 format.
        format: Format,
    },
}

impl Interceptor {
    /// Applies this interceptor to `e`. A dead-lettered event skips later interceptors'
    /// filters (it must reach the dead-letter sink) but still gets headers.
    pub fn apply(&self, e: &mut Event, now_ms: i64) -> Verdict {
        match self {
            Interceptor::Filter { regex, exclude } => {
                if e.dead_letter.is_some() || regex.is_match(&e.body) != *exclude {
                    Verdict::Keep
                } else {
                    Verdict::Drop
                }
            }
            Interceptor::Timestamp { header } => {
                e.set_header(header, now_ms.to_string());
                Verdict::Keep
            }
            Interceptor::Host { header, value } => {
                e.set_header(header, value.clone());
                Verdict::Keep
            }
            Interceptor::Extract { regex, header } => {
                if let Some(m) = regex.captures(&e.body).and_then(|c| c.get(1)) {
                    e.set_header(header, String::from_utf8_lossy(m.as_bytes()).into_owned());
                }
                Verdict::Keep
            }
            Interceptor::Validate { format } => {
                if e.dead_letter.is_none()
                    && let Err(reason) = format.validate(&e.body)
                {
                    e.dead_letter = Some(reason.to_string());
                }
                Verdict::Keep
            }
        }
    }
}

/// Runs `chain` over `events`, returning the kept ones (dead letters included) and the
/// number dropped by filters.
pub fn apply_chain(chain: &[Interceptor], events: Vec<Event>, now_ms: i64) -> (Vec<Event>, usize) {
    if chain.is_empty() {
        return (events, 0);
    }
    let before = events.len();
    let kept: Vec<Event> = events
        .into_iter()
        .filter_map(|mut e| {
            for i in chain {
                if i.apply(&mut e, now_ms) == Verdict::Drop {
                    return None;
                }
            }
            Some(e)
        })
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> Event {
        Event::new(s.as_bytes().to_vec())
    }

    #[test]
    fn validator_marks_garbage_with_reason_and_filter_spares_it() {
        let chain = vec![
            Interceptor::Validate {
                format: Format::Driving,
            },
            Interceptor::Filter {
                regex: Regex::new("^2026").unwrap(),
                exclude: false,
            },
            Interceptor::Host {
                header: "host".into(),
                value: "h1".into(),
            },
            Interceptor::Timestamp {
                header: "timestamp".into(),
            },
        ];
        let events = vec![
            ev("20261122143015,V0042,3,0,-12,N,87,A07"),
            ev("20251122143015,V0042,3,0,-12,N,87,A07"),
            ev("20261122143015,V0042,3,0,-12,N,fast,A07"),
        ];
        let (kept, dropped) = apply_chain(&chain, events, 42);
        assert_eq!(dropped, 1);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].dead_letter, None);
        assert_eq!(
            kept[1].dead_letter.as_deref(),
            Some("field 7 (speed): not an integer: \"fast\"")
        );
        assert_eq!(kept[0].header("host"), Some("h1"));
        assert_eq!(kept[1].header("timestamp"), Some("42"));
    }

    #[test]
    fn exclude_filter_and_extract() {
        let chain = vec![
            Interceptor::Filter {
                regex: Regex::new("^#").unwrap(),
                exclude: true,
            },
            Interceptor::Extract {
                regex: Regex::new("^[0-9]{14},([A-Z])").unwrap(),
                header: "class".into(),
            },
        ];
        let (kept, dropped) =
            apply_chain(&chain, vec![ev("# comment"), ev("20261122143015,V0042")], 0);
        assert_eq!(dropped, 1);
        assert_eq!(kept[0].header("class"), Some("V"));
    }
}
