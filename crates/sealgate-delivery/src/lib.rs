//! Outbound delivery (layer L4): the SMTP client ([`client`]), routing by MX, the delivery
//! workers (TLS, end-to-end encryption, the secure portal: [`portal`]). Takes claimed recipients from the queue
//! and settles them; must not depend on the ingress side (they meet only in the queue), and never
//! initialises tracing or reads the environment.

mod attempt;
pub mod client;
mod connect;
mod context;
pub mod encrypt;
pub mod facts;
pub mod plan;
mod pool;
pub mod portal;
mod route;
pub mod verify;
pub mod worker;

pub use context::DeliveryContext;
