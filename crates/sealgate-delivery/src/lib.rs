//! Outbound delivery (layer L4): the SMTP client ([`client`]), routing by MX, the delivery
//! workers (TLS, end-to-end encryption, the secure portal: [`portal`]), and delivery status
//! notifications ([`dsn`]). Takes claimed recipients from the queue
//! and settles them; must not depend on the ingress side (they meet only in the queue), and never
//! initialises tracing or reads the environment.

mod attempt;
pub mod bounce;
pub mod client;
mod connect;
pub mod dsn;
pub mod encrypt;
pub mod facts;
pub mod plan;
mod pool;
pub mod portal;
pub mod verify;
pub mod worker;
