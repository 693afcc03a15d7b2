//! sea-orm entities, one file per table; the only place that knows table and column names.
pub mod session;
pub mod user;
