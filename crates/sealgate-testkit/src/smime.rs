//! S/MIME certificates and `openssl cms` for tests (being written).
