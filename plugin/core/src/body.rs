//! Request body buffering decisions.
//!
//! The adapter lets request headers through once they pass inspection and
//! pauses the body instead. While the body is incomplete it returns
//! `Action::Pause`, so the host buffers the chunks and reports the whole
//! buffered size at the next callback. [`BodyTracker`] decides, per callback,
//! whether to keep buffering, inspect, or stop because the body passed
//! `max_body_bytes`. A request without a body gets no body callback, so
//! nothing here depends on `end_of_stream` at header time.

use crate::filter::Filter;

/// The adapter's action for one body or trailers callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStep {
    /// Keep buffering: return `Action::Pause`.
    Buffer,
    /// The body is complete: read `size` bytes from offset 0, inspect them,
    /// then continue or block.
    Inspect {
        /// Size of the buffered body in bytes.
        size: usize,
    },
    /// The buffered body passed `max_body_bytes`: apply `on_body_too_large`.
    TooLarge {
        /// Size of the buffered body in bytes when the limit was passed.
        size: usize,
    },
    /// Nothing to inspect: return `Action::Continue`.
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No body callback yet.
    Waiting,
    /// Chunks are being buffered; the value is the last reported size.
    Buffering(usize),
    /// The body was inspected, rejected or let through, or filtering is off.
    Done,
}

/// Per-request body state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyTracker {
    limit: usize,
    state: State,
}

impl BodyTracker {
    /// Creates the tracker for one request. When filtering is off, every step
    /// is [`BodyStep::Continue`].
    pub fn new(filter: &Filter) -> Self {
        BodyTracker {
            limit: filter.max_body_bytes(),
            state: if filter.enabled() {
                State::Waiting
            } else {
                State::Done
            },
        }
    }

    /// Decides what to do with a body callback. `buffered_size` is the size
    /// the host reports, which covers every chunk held so far because earlier
    /// chunks were paused.
    pub fn on_body(&mut self, buffered_size: usize, end_of_stream: bool) -> BodyStep {
        if self.state == State::Done {
            return BodyStep::Continue;
        }
        if buffered_size > self.limit {
            self.state = State::Done;
            return BodyStep::TooLarge {
                size: buffered_size,
            };
        }
        if end_of_stream {
            self.state = State::Done;
            return BodyStep::Inspect {
                size: buffered_size,
            };
        }
        self.state = State::Buffering(buffered_size);
        BodyStep::Buffer
    }

    /// Decides what to do when request trailers arrive, which ends a body
    /// whose last chunk came without `end_of_stream`.
    pub fn on_trailers(&mut self) -> BodyStep {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::Buffering(size) => BodyStep::Inspect { size },
            State::Waiting | State::Done => BodyStep::Continue,
        }
    }

    /// Marks the request as finished, for example after a block response.
    pub fn finish(&mut self) {
        self.state = State::Done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn tracker(json: &str) -> BodyTracker {
        match Config::from_json(json.as_bytes()) {
            Ok(config) => BodyTracker::new(&config.filter),
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn buffers_until_end_of_stream() {
        let mut body = tracker(r#"{"filter": {"max_body_bytes": 100}}"#);
        assert_eq!(body.on_body(10, false), BodyStep::Buffer);
        assert_eq!(body.on_body(60, false), BodyStep::Buffer);
        assert_eq!(body.on_body(90, true), BodyStep::Inspect { size: 90 });
        assert_eq!(body.on_body(0, true), BodyStep::Continue);
    }

    #[test]
    fn body_at_limit_is_inspected() {
        let mut body = tracker(r#"{"filter": {"max_body_bytes": 100}}"#);
        assert_eq!(body.on_body(100, true), BodyStep::Inspect { size: 100 });
    }

    #[test]
    fn stops_as_soon_as_limit_is_passed() {
        let mut body = tracker(r#"{"filter": {"max_body_bytes": 100}}"#);
        assert_eq!(body.on_body(50, false), BodyStep::Buffer);
        assert_eq!(body.on_body(101, false), BodyStep::TooLarge { size: 101 });
        assert_eq!(body.on_body(500, true), BodyStep::Continue);
    }

    #[test]
    fn empty_final_chunk_is_inspected() {
        let mut body = tracker("{}");
        assert_eq!(body.on_body(0, true), BodyStep::Inspect { size: 0 });
    }

    #[test]
    fn zero_limit_rejects_any_body() {
        let mut body = tracker(r#"{"filter": {"max_body_bytes": 0}}"#);
        assert_eq!(body.on_body(1, false), BodyStep::TooLarge { size: 1 });
    }

    #[test]
    fn trailers_end_buffered_body() {
        let mut body = tracker("{}");
        assert_eq!(body.on_body(20, false), BodyStep::Buffer);
        assert_eq!(body.on_trailers(), BodyStep::Inspect { size: 20 });
        assert_eq!(body.on_trailers(), BodyStep::Continue);
    }

    #[test]
    fn trailers_without_body_continue() {
        let mut body = tracker("{}");
        assert_eq!(body.on_trailers(), BodyStep::Continue);
    }

    #[test]
    fn disabled_filter_never_buffers() {
        let mut body = tracker(r#"{"filter": {"enabled": false}}"#);
        assert_eq!(body.on_body(10, false), BodyStep::Continue);
        assert_eq!(body.on_body(10_000_000, true), BodyStep::Continue);
    }

    #[test]
    fn finish_stops_buffering() {
        let mut body = tracker("{}");
        body.finish();
        assert_eq!(body.on_body(10, false), BodyStep::Continue);
    }
}
