//! The offline journal: every write the client makes becomes an operation, durable in the store
//! before the client hears `{op}` (invariant 1), applied to the mirror in the same transaction,
//! and replayed against the server by the service child that owns the connection.
//!
//! ```text
//!  IPC write ─► validate ─► one LMDB txn: journal entry + mirror change ─► {op: id}
//!                                                │
//!            service child (push before pull) ◄──┘ replay in id order: attempt counted first,
//!                                                   then the request; done → entry removed,
//!                                                   op.done; permanent failure → kept, op.failed
//! ```

pub mod dav_op;
pub mod op;

pub use dav_op::DavOp;
pub use op::{MailOp, OpError};

/// Attempts before an operation is set aside for the user (`op.failed`); it is never dropped.
pub const MAX_ATTEMPTS: u32 = 5;
