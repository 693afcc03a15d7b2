//! Playback arithmetic, pure: where a room's track is at a given server instant, and the next
//! state for each control. Every client computes the same position from the same stored state
//! (`position_ms` at `updated_at`), so a late joiner is in step with everyone else.
use chrono::{DateTime, Duration, DurationRound, Utc};
use uuid::Uuid;

use crate::entity::room_playback::Model as State;

/// The server clock at millisecond precision (what is stored and what clients compute with).
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(Duration::milliseconds(1)).unwrap_or(now)
}

/// The position in ms at instant `at`: the stored position, plus the time played since, never
/// past the end of a track of known length.
pub fn position_at(state: &State, length_ms: Option<i64>, at: DateTime<Utc>) -> i64 {
    let mut position = state.position_ms;
    if state.is_playing && state.track_id.is_some() {
        position += (at - state.updated_at).num_milliseconds().max(0);
    }
    match length_ms {
        Some(length) => position.clamp(0, length.max(0)),
        None => position.max(0),
    }
}

/// The server instant at which a playing track was at position 0.
pub fn started_at(state: &State) -> Option<DateTime<Utc>> {
    (state.is_playing && state.track_id.is_some())
        .then(|| state.updated_at - Duration::milliseconds(state.position_ms))
}

/// When a track of `length_ms` playing from `position_ms` at `at` runs out.
fn ends_at(length_ms: Option<i64>, position_ms: i64, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    length_ms.map(|length| at + Duration::milliseconds((length - position_ms).max(0)))
}

/// A room with nothing loaded (before anything was ever played).
pub fn idle(chat_id: Uuid, at: DateTime<Utc>) -> State {
    State {
        chat_id,
        track_id: None,
        is_playing: false,
        position_ms: 0,
        updated_at: at,
        ends_at: None,
        version: 0,
        changed_by: None,
    }
}

/// `track` playing from `position_ms` as of `at`.
pub fn playing(
    prev: &State,
    track: Uuid,
    length_ms: Option<i64>,
    position_ms: i64,
    at: DateTime<Utc>,
) -> State {
    State {
        track_id: Some(track),
        is_playing: true,
        position_ms,
        updated_at: at,
        ends_at: ends_at(length_ms, position_ms, at),
        version: prev.version + 1,
        ..prev.clone()
    }
}

/// Held at its current position.
pub fn paused(prev: &State, length_ms: Option<i64>, at: DateTime<Utc>) -> State {
    State {
        is_playing: false,
        position_ms: position_at(prev, length_ms, at),
        updated_at: at,
        ends_at: None,
        version: prev.version + 1,
        ..prev.clone()
    }
}

/// Moved to `position_ms`, playing or paused as before.
pub fn seeked(prev: &State, length_ms: Option<i64>, position_ms: i64, at: DateTime<Utc>) -> State {
    State {
        position_ms,
        updated_at: at,
        ends_at: if prev.is_playing {
            ends_at(length_ms, position_ms, at)
        } else {
            None
        },
        version: prev.version + 1,
        ..prev.clone()
    }
}

/// Nothing playing any more (the queue ran out, or the track was deleted).
pub fn stopped(prev: &State, at: DateTime<Utc>) -> State {
    State {
        track_id: None,
        is_playing: false,
        position_ms: 0,
        updated_at: at,
        ends_at: None,
        version: prev.version + 1,
        ..prev.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn everyone_computes_the_same_position_from_the_stored_state() {
        let track = Uuid::new_v4();
        let state = playing(
            &idle(Uuid::new_v4(), at(0)),
            track,
            Some(60_000),
            5_000,
            at(0),
        );
        assert_eq!(state.ends_at, Some(at(55_000)));
        assert_eq!(position_at(&state, Some(60_000), at(1_500)), 6_500);
        assert_eq!(started_at(&state), Some(at(-5_000)));
        // Past the end it stays at the end.
        assert_eq!(position_at(&state, Some(60_000), at(90_000)), 60_000);
    }

    #[test]
    fn pause_holds_the_position_and_resume_continues_from_it() {
        let track = Uuid::new_v4();
        let start = playing(&idle(Uuid::new_v4(), at(0)), track, Some(10_000), 0, at(0));
        let held = paused(&start, Some(10_000), at(4_000));
        assert_eq!((held.position_ms, held.ends_at), (4_000, None));
        assert_eq!(position_at(&held, Some(10_000), at(9_000)), 4_000);
        assert_eq!(started_at(&held), None);
        let again = playing(&held, track, Some(10_000), held.position_ms, at(20_000));
        assert_eq!(again.ends_at, Some(at(26_000)));
        assert_eq!(again.version, 3);
    }

    #[test]
    fn seek_while_paused_stays_paused() {
        let track = Uuid::new_v4();
        let start = playing(&idle(Uuid::new_v4(), at(0)), track, None, 0, at(0));
        assert_eq!(start.ends_at, None, "unknown length: never ends by itself");
        let held = paused(&start, None, at(1_000));
        let moved = seeked(&held, None, 30_000, at(2_000));
        assert!(!moved.is_playing);
        assert_eq!(position_at(&moved, None, at(5_000)), 30_000);
    }
}
