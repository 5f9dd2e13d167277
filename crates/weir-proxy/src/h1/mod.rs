//! weir's own HTTP/1.1 codec, on `httparse`: message heads parsed into `http` types
//! without copying header values, body framing by RFC 9112 §6 (refusing what it calls
//! ambiguous), the chunked coding, and an upstream connection that the request using it
//! drives directly (no connection task, no channel between the two).
//!
//! Why not hyper's client here: an exchange through hyper's connection goes through a
//! dispatch channel and a state machine built for a task of its own; weir's requests
//! drive their connections themselves, and the profile showed that machinery as a
//! large share of the instructions of a proxied request.

pub(crate) mod body;
pub(crate) mod chunked;
pub(crate) mod client;
pub(crate) mod head;
pub(crate) mod out;
pub(crate) mod server;
