//! clawveil-tls
