//! Connection limits, in total and per client IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections; a [`ConnectionPermit`] releases its slot when dropped.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    total_max: usize,
    per_ip_max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// Too many connections in total.
    Total,
    /// Too many from this IP.
    PerIp,
}

/// One open connection's slot.
#[derive(Debug)]
pub struct ConnectionPermit {
    inner: Arc<Inner>,
    ip: IpAddr,
}

impl ConnectionLimits {
    /// Limits of `total_max` connections, `per_ip_max` from one address.
    pub fn new(total_max: usize, per_ip_max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                total_max,
                per_ip_max,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Takes a slot for a connection from `ip`, or says which limit is reached.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnectionPermit, LimitExceeded> {
        let mut st = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.total >= self.inner.total_max {
            return Err(LimitExceeded::Total);
        }
        let n = st.per_ip.entry(ip).or_insert(0);
        if *n >= self.inner.per_ip_max {
            return Err(LimitExceeded::PerIp);
        }
        *n += 1;
        st.total += 1;
        Ok(ConnectionPermit {
            inner: self.inner.clone(),
            ip,
        })
    }

    /// Open connections right now.
    pub fn open(&self) -> usize {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .total
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut st = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        st.total = st.total.saturating_sub(1);
        if let Some(n) = st.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                st.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_apply_per_ip_and_in_total_and_free_on_drop() {
        let l = ConnectionLimits::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let p1 = l.try_acquire(a).expect("1st");
        let _p2 = l.try_acquire(a).expect("2nd");
        assert_eq!(l.try_acquire(a).err(), Some(LimitExceeded::PerIp));
        let _p3 = l.try_acquire(b).expect("other ip");
        assert_eq!(l.try_acquire(b).err(), Some(LimitExceeded::Total));
        drop(p1);
        let _p4 = l.try_acquire(a).expect("slot freed");
        assert_eq!(l.open(), 3);
    }
}
