//! clawveil-telemetry
