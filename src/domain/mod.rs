//! Business rules per area. Plain Rust in, `AppError` out; no GraphQL or HTTP types here.
//! Every entry point takes the caller (`Viewer`) and checks what it may touch.
pub mod accounts;
pub mod users;
pub mod validate;

pub use crate::auth::Viewer;
