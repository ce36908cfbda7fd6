//! The desktop side of opconnect: the tray icon and menu, desktop notifications and start at login.
//!
//! ```text
//!  tray_state, menu, notice   pure rules: agent state in, icon / menu entries / notices out
//!  icons                      the built-in tray icons (from assets/icons/)
//!  tray                       tao + tray-icon on the main thread, drawing `menu`
//!  notifier                   notify-rust on a thread of its own, buttons for conflicts
//!  autostart                  auto-launch: XDG autostart, Run key, LaunchAgent
//! ```

pub mod autostart;
pub mod icons;
pub mod menu;
pub mod notice;
pub mod notifier;
pub mod tray;
pub mod tray_state;

pub use tray_state::{TrayState, tray_state};
