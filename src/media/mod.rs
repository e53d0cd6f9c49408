//! Media around the engine: probing files ahead of air and making the sample channel's demo media.

pub mod demo;
pub mod probe;
