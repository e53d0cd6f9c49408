//! Media around the engine: making the sample channel's demo media.

pub mod demo;
