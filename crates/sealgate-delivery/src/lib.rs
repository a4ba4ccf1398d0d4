//! sealgate-delivery
