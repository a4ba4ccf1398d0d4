//! GnuPG for tests (being written).
