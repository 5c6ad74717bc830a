//! clawveil-redact
