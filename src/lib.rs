//! airclass: a playout scheduler for an education TV channel.
//!
//! Weekly schedules ([`schedule`]) become frame-exact daily rundowns ([`rundown`]) at integer
//! frame positions ([`time`]); the public timetable ([`timetable`]) and the played-out transport
//! stream ([`playout`]) are both derived from those rundowns. [`media`] probes and makes media.

pub mod media;
pub mod playout;
pub mod policy;
pub mod rundown;
pub mod schedule;
pub mod server;
pub mod service;
pub mod time;
pub mod timetable;
