//! A region's entry in meta and its state machine (`server/docs/cluster_design.md` §3).
//!
//! ```text
//!            assign(s)                 opened(s, e)
//!  offline ─────────────▶ opening(s,e+1) ───────────▶ open(s,e+1)
//!     ▲                      │ failed(s,e) / lost(s)       │ close(s,e)
//!     │                      ▼                             ▼
//!     └──────────────── offline(e+1) ◀──────────── closing(s,e+1)
//!                              closed(s,e) / lost(s)
//!  split(s,e): open(s,e) ─▶ split(e+1), daughters opening(s,1), in one transaction
//!  move(s,e,t): open(s,e) ─▶ closing(s,e+1) with target t; once closed, the master
//!               assigns it to t if t is alive (else to the least loaded member)
//! ```
//!
//! Every transition but `opened` increments the epoch; a report (`opened`, `closed`,
//! `failed`) names the server and the epoch it acts on and is refused for any other, so a
//! late report of an earlier assignment changes nothing. Pure: no etcd here.

use serde::{Deserialize, Serialize};

/// Where a region is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionState {
    /// On no server.
    Offline,
    /// Assigned; the server is opening it (fencing, then WAL replay).
    Opening,
    /// Served by its server.
    Open,
    /// Its server is flushing and closing it.
    Closing,
    /// Split in two; kept while the daughters refer to its files.
    Split,
}

/// A region as meta stores it under `meta/regions/<table>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionMeta {
    /// First row key, hex; `""` is the table's start.
    pub start: String,
    /// Row key after the last one, hex; `""` is the table's end.
    pub end: String,
    /// State.
    pub state: RegionState,
    /// The server it is assigned to (opening, open, closing), else `None`.
    pub server: Option<String>,
    /// Grows on every transition but `opened`.
    pub epoch: u64,
    /// The region it was split from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    /// Its daughters, once split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<[u64; 2]>,
    /// Where a move takes it: set by `move`, honoured by the next `assign`, which clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What happens to a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The master assigns it to a server.
    Assign(String),
    /// The server reports it open, for the epoch it was assigned with.
    Opened(String, u64),
    /// The server reports that opening failed.
    Failed(String, u64),
    /// The master asks its server to close it (unassign, drain, drop).
    Close(String, u64),
    /// The master asks its server to close it so that it opens on the target next
    /// (operator's move, balancer): server, epoch, target.
    Move(String, u64, String),
    /// The server reports it closed.
    Closed(String, u64),
    /// Its server's lease ended (the master saw its member key go).
    Lost(String),
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event:?} does not apply to a region {state:?} on {server:?} at epoch {epoch}")]
pub struct Illegal {
    /// The event refused.
    pub event: Event,
    /// The region's state.
    pub state: RegionState,
    /// Its server.
    pub server: Option<String>,
    /// Its epoch.
    pub epoch: u64,
}

impl RegionMeta {
    /// A new region, offline at epoch 0.
    pub fn new(start: &[u8], end: &[u8]) -> RegionMeta {
        RegionMeta {
            start: hex(start),
            end: hex(end),
            state: RegionState::Offline,
            server: None,
            epoch: 0,
            parent: None,
            split: None,
            target: None,
        }
    }

    /// The entry after `event`.
    ///
    /// # Errors
    /// [`Illegal`] when the event does not apply to this state, server or epoch.
    pub fn apply(&self, event: &Event) -> Result<RegionMeta, Illegal> {
        use RegionState::*;
        let on = |s: &String| self.server.as_ref() == Some(s);
        let mut next = self.clone();
        match (event, self.state) {
            (Event::Assign(s), Offline) => {
                next.state = Opening;
                next.server = Some(s.clone());
                next.epoch += 1;
                next.target = None;
            }
            (Event::Opened(s, e), Opening) if on(s) && *e == self.epoch => {
                next.state = Open;
            }
            (Event::Failed(s, e), Opening) if on(s) && *e == self.epoch => {
                next.state = Offline;
                next.server = None;
                next.epoch += 1;
            }
            (Event::Close(s, e), Open) if on(s) && *e == self.epoch => {
                next.state = Closing;
                next.epoch += 1;
            }
            (Event::Move(s, e, t), Open) if on(s) && *e == self.epoch && t != s => {
                next.state = Closing;
                next.epoch += 1;
                next.target = Some(t.clone());
            }
            (Event::Closed(s, e), Closing) if on(s) && *e == self.epoch => {
                next.state = Offline;
                next.server = None;
                next.epoch += 1;
            }
            (Event::Lost(s), Opening | Open | Closing) if on(s) => {
                next.state = Offline;
                next.server = None;
                next.epoch += 1;
            }
            _ => {
                return Err(Illegal {
                    event: event.clone(),
                    state: self.state,
                    server: self.server.clone(),
                    epoch: self.epoch,
                });
            }
        }
        Ok(next)
    }
}

impl RegionMeta {
    /// The entries a split of this region (`id`) at `key` by `server` writes: the parent (`split`,
    /// on no server, epoch + 1, naming its daughters) and the daughters `ids` (opening on
    /// `server` for the parent's new epoch, so their sequence and file-id floors start
    /// above everything the parent's owners used).
    ///
    /// # Errors
    /// [`Illegal`] unless the region is open on `server` at `epoch` and `key` is strictly
    /// inside it.
    pub fn split(
        &self,
        id: u64,
        server: &str,
        epoch: u64,
        key: &[u8],
        ids: [u64; 2],
    ) -> Result<(RegionMeta, [RegionMeta; 2]), Illegal> {
        let illegal = || Illegal {
            event: Event::Close(server.to_owned(), epoch),
            state: self.state,
            server: self.server.clone(),
            epoch: self.epoch,
        };
        let start = unhex(&self.start).ok_or_else(illegal)?;
        let end = unhex(&self.end).ok_or_else(illegal)?;
        let inside = key > &start[..] && (end.is_empty() || key < &end[..]);
        if self.state != RegionState::Open
            || self.server.as_deref() != Some(server)
            || self.epoch != epoch
            || !inside
        {
            return Err(illegal());
        }
        let mut parent = self.clone();
        parent.state = RegionState::Split;
        parent.server = None;
        parent.epoch += 1;
        parent.split = Some(ids);
        parent.target = None;
        let daughter = |start: &[u8], end: &[u8]| RegionMeta {
            state: RegionState::Opening,
            server: Some(server.to_owned()),
            epoch: self.epoch + 1,
            parent: Some(id),
            ..RegionMeta::new(start, end)
        };
        Ok((parent, [daughter(&start, key), daughter(key, &end)]))
    }
}

/// Lower-case hex of a row key, as meta stores boundaries.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex boundary, `None` if it is not valid hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegionState::*;

    fn a() -> String {
        "a".into()
    }

    #[test]
    fn a_region_goes_round_and_every_move_grows_the_epoch() {
        let r = RegionMeta::new(b"", b"M");
        assert_eq!((r.state, r.epoch), (Offline, 0));
        let r = r.apply(&Event::Assign(a())).unwrap();
        assert_eq!(
            (r.state, r.server.as_deref(), r.epoch),
            (Opening, Some("a"), 1)
        );
        let r = r.apply(&Event::Opened(a(), 1)).unwrap();
        assert_eq!(
            (r.state, r.epoch),
            (Open, 1),
            "opened keeps the epoch it reports"
        );
        let r = r.apply(&Event::Close(a(), 1)).unwrap();
        assert_eq!((r.state, r.epoch), (Closing, 2));
        let r = r.apply(&Event::Closed(a(), 2)).unwrap();
        assert_eq!((r.state, r.server.as_deref(), r.epoch), (Offline, None, 3));
        let r = r.apply(&Event::Assign("b".into())).unwrap();
        assert_eq!(r.epoch, 4);
        let r = r.apply(&Event::Lost("b".into())).unwrap();
        assert_eq!((r.state, r.epoch), (Offline, 5));
    }

    #[test]
    fn a_move_closes_with_a_target_that_the_next_assign_clears() {
        let r = RegionMeta::new(b"", b"")
            .apply(&Event::Assign(a()))
            .unwrap()
            .apply(&Event::Opened(a(), 1))
            .unwrap();
        assert!(
            r.apply(&Event::Move(a(), 1, a())).is_err(),
            "a move to where it is already is refused"
        );
        assert!(
            r.apply(&Event::Move(a(), 0, "b".into())).is_err(),
            "stale epoch"
        );
        let r = r.apply(&Event::Move(a(), 1, "b".into())).unwrap();
        assert_eq!(
            (r.state, r.epoch, r.target.as_deref()),
            (Closing, 2, Some("b"))
        );
        let r = r.apply(&Event::Closed(a(), 2)).unwrap();
        assert_eq!((r.state, r.target.as_deref()), (Offline, Some("b")));
        let r = r.apply(&Event::Assign("b".into())).unwrap();
        assert_eq!((r.state, r.epoch, r.target), (Opening, 4, None));
    }

    #[test]
    fn a_split_hands_both_halves_to_the_splitting_server_at_the_next_epoch() {
        let r = RegionMeta::new(b"", b"M")
            .apply(&Event::Assign(a()))
            .unwrap()
            .apply(&Event::Opened(a(), 1))
            .unwrap();
        let (parent, [l, r2]) = r.split(3, "a", 1, b"F", [7, 8]).unwrap();
        assert_eq!(
            (
                parent.state,
                parent.server.as_deref(),
                parent.epoch,
                parent.split
            ),
            (Split, None, 2, Some([7, 8]))
        );
        assert_eq!((l.start.as_str(), l.end.as_str()), ("", "46"));
        assert_eq!((r2.start.as_str(), r2.end.as_str()), ("46", "4d"));
        for d in [&l, &r2] {
            assert_eq!(
                (d.state, d.server.as_deref(), d.epoch, d.parent),
                (Opening, Some("a"), 2, Some(3))
            );
        }
        // Only its server, at its epoch, inside its range.
        assert!(r.split(3, "b", 1, b"F", [7, 8]).is_err());
        assert!(r.split(3, "a", 0, b"F", [7, 8]).is_err());
        assert!(r.split(3, "a", 1, b"", [7, 8]).is_err());
        assert!(r.split(3, "a", 1, b"M", [7, 8]).is_err());
        assert!(r.split(3, "a", 1, b"Z", [7, 8]).is_err());
    }

    #[test]
    fn stale_or_foreign_reports_change_nothing() {
        let r = RegionMeta::new(b"", b"")
            .apply(&Event::Assign(a()))
            .unwrap();
        // A report for another epoch or from another server is refused.
        assert!(r.apply(&Event::Opened(a(), 0)).is_err());
        assert!(r.apply(&Event::Opened("b".into(), 1)).is_err());
        assert!(r.apply(&Event::Lost("b".into())).is_err());
        // Nothing is assigned twice, and an offline region cannot be opened or closed.
        assert!(r.apply(&Event::Assign("b".into())).is_err());
        let off = RegionMeta::new(b"", b"");
        for e in [
            Event::Opened(a(), 0),
            Event::Closed(a(), 0),
            Event::Close(a(), 0),
            Event::Lost(a()),
        ] {
            let err = off.apply(&e).unwrap_err();
            assert_eq!(err.state, Offline, "{err}");
        }
    }

    #[test]
    fn boundaries_round_trip_through_hex() {
        for key in [&b""[..], b"V0042", &[0, 0x7f, 0x80, 0xff]] {
            assert_eq!(unhex(&hex(key)).unwrap(), key);
        }
        assert_eq!(hex(b"M"), "4d");
        assert!(unhex("4").is_none());
        assert!(unhex("zz").is_none());
    }

    #[test]
    fn the_design_doc_example_parses() {
        let text =
            r#"{"start":"","end":"4d","state":"open","server":"a:16020:1795910400000","epoch":2}"#;
        let r: RegionMeta = serde_json::from_str(text).unwrap();
        assert_eq!(r.state, Open);
        assert_eq!(unhex(&r.end).unwrap(), b"M");
        assert_eq!(serde_json::to_string(&r).unwrap(), text);
    }
}
