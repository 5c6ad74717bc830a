//! clawveil-proxy
