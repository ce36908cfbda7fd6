//! The desktop side of opconnect: what the tray shows. The tray menu, notifications and start at
//! login are built on this (tray-icon, tao, notify-rust, auto-launch) by the tray issue.

pub mod tray_state;

pub use tray_state::{TrayState, tray_state};
