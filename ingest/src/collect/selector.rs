//! Selectors: how a pipeline's events fan out to its branches (channel + sink). Replicating
//! copies every event to every branch; multiplexing routes by a header value, with a
//! default for unmapped or missing values.

use std::collections::HashMap;

use super::Event;

/// A configured selector over branch indices.
#[derive(Debug, Clone)]
pub enum Selector {
    /// Every event to every branch.
    Replicating {
        /// Number of branches.
        branches: usize,
    },
    /// By the value of `header`.
    Multiplexing {
        /// Header consulted.
        header: String,
        /// Value → branch indices.
        mapping: HashMap<String, Vec<usize>>,
        /// Branches for unmapped values.
        default: Vec<usize>,
        /// Number of branches.
        branches: usize,
    },
}

impl Selector {
    /// Splits `events` into one batch per branch (order within a branch preserved).
    pub fn route(&self, events: Vec<Event>) -> Vec<Vec<Event>> {
        match self {
            Selector::Replicating { branches } => {
                let mut out = Vec::with_capacity(*branches);
                for _ in 1..*branches {
                    out.push(events.clone());
                }
                out.push(events);
                out
            }
            Selector::Multiplexing {
                header,
                mapping,
                default,
                branches,
            } => {
                let mut out: Vec<Vec<Event>> = vec![Vec::new(); *branches];
                for e in events {
                    let targets = e
                        .header(header)
                        .and_then(|v| mapping.get(v))
                        .unwrap_or(default);
                    match targets.split_last() {
                        Some((last, rest)) => {
                            for t in rest {
                                out[*t].push(e.clone());
                            }
                            out[*last].push(e);
                        }
                        None => out[0].push(e),
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplexing_routes_by_header_with_default() {
        let s = Selector::Multiplexing {
            header: "class".into(),
            mapping: HashMap::from([("V".to_owned(), vec![1]), ("W".to_owned(), vec![0, 1])]),
            default: vec![0],
            branches: 2,
        };
        let mk = |c: Option<&str>| {
            let mut e = Event::new(b"x".to_vec());
            if let Some(c) = c {
                e.set_header("class", c.into());
            }
            e
        };
        let out = s.route(vec![mk(Some("V")), mk(Some("W")), mk(None), mk(Some("Z"))]);
        assert_eq!(out[0].len(), 3);
        assert_eq!(out[1].len(), 2);
        let r = Selector::Replicating { branches: 3 }.route(vec![mk(None)]);
        assert_eq!(r.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1, 1]);
    }
}
