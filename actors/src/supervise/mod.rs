//! Supervision building blocks: reconnect backoff and children that may fail or panic.

pub mod backoff;
pub mod child;

pub use backoff::Backoff;
pub use child::{ChildCommand, ChildContext, ChildExit, ChildFactory, ChildReport, Inbox};
