//! opconnect's IPC (INTERFACE §4): framing, JSON-RPC 2.0 types, and the local-socket server and
//! client the agent, the command line and the Outlook add-in talk through.
//!
//! ```text
//!  Client ──frame──▶ Unix socket (0600 in a 0700 dir, peer uid checked)  ──▶ serve() ──▶ Service
//!         ◀─frame──  or named pipe (DACL: current user only)             ◀── events ◀──┘
//! ```
//!
//! The crate knows nothing about accounts or actors: the agent implements [`Service`].

pub mod client;
mod connection;
pub mod endpoint;
pub mod frame;
pub mod rpc;
pub mod server;

pub use client::{Client, ClientError, DEFAULT_CALL_TIMEOUT};
pub use connection::LAGGED_TOPIC;
pub use endpoint::default_socket_path;
pub use frame::MAX_FRAME;
pub use rpc::{Event, PROTOCOL_VERSION, Request, Response, RpcError, code};
pub use server::{ServeError, Server, Service, serve};
