//! A value a reload replaces while readers keep the one they took.

use std::sync::{Arc, RwLock};

/// The current `T`, replaceable at any time: a reader takes the value of the moment (an
/// `Arc`, cheap to clone) and keeps it as long as it needs; a replacement affects only
/// readers that come after it.
#[derive(Debug)]
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    /// Starts with `value`.
    pub fn new(value: Arc<T>) -> Self {
        Self(RwLock::new(value))
    }

    /// The value now.
    pub fn current(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `value` in place for the readers that come after.
    pub fn replace(&self, value: Arc<T>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_keeps_what_it_took_and_later_readers_see_the_replacement() {
        let live = Live::new(Arc::new(1));
        let taken = live.current();
        live.replace(Arc::new(2));
        assert_eq!((*taken, *live.current()), (1, 2));
    }
}
