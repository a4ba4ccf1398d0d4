//! sealgate-dns
