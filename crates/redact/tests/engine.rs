//! The engine through its public API: every rule with positives and look-alike
//! negatives, configuration, bodies, truncation, and property tests.

mod support;

#[path = "engine/api.rs"]
mod api;
#[path = "engine/props.rs"]
mod props;
#[path = "engine/rules.rs"]
mod rules;
#[path = "engine/truncation.rs"]
mod truncation;

use clawveil_redact::{Engine, EngineConfig, Report};

/// An engine with the default configuration (all built-in rules, masks).
pub fn engine() -> Engine {
    Engine::new(&EngineConfig::default()).unwrap()
}

/// Redacts free text with the default engine.
pub fn red(s: &str) -> String {
    engine().redact_text(s, &mut Report::new()).into_owned()
}
