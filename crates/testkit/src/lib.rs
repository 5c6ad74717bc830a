//! clawveil-testkit
