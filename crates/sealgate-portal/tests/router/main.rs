//! The portal's routes against a real SQLite store: links, verification with attempt limits,
//! sessions, CSRF, the origin check and throttling, sign-out, IDOR, security headers,
//! reading, downloading and replying.

mod fixture;
mod guard;
mod links;
mod read;
mod reply;
mod server;
mod verify;
