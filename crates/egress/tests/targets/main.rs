//! Model targets end to end on loopback: `clawveil_egress::start` in front of HTTPS
//! model servers with a CA made at test time (rcgen), a plain HTTP client as the bot,
//! curl and raw requests for the proxy forms, and the official `openai` SDK when python
//! has it. One test binary.

mod common;
mod exchange;
mod fallback;
mod openai;
mod routing;
mod tls;
