//! Outbound delivery (layer L4): the SMTP client, routing by MX, the delivery workers, and
//! delivery status notifications. Takes claimed recipients from the queue and settles them;
//! must not depend on the ingress side (they meet only in the queue).

pub mod dsn;
