//! clawveil-config
