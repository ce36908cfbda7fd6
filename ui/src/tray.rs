//! The tray icon and its menu (tray-icon + tao). GTK must own the main thread, so the agent's
//! actix system runs on another thread and talks to the tray only through [`TrayHandle`] (tao's
//! `EventLoopProxy`); clicks go back through the `on_command` callback.
//!
//! ```text
//!  main thread: tao/GTK event loop ── tray icon + menu  ◄── TrayHandle::update(MenuInput)
//!                         │ click                            (from the agent thread)
//!                         └──► on_command(Command) ──► agent thread
//! ```
//!
//! Degrading: no display → [`TrayError::NoDisplay`] (the agent runs headless); GTK failing to start
//! → [`TrayError::Gtk`]; the appindicator library missing → the loop runs without an icon and
//! says so once, so notifications still work.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoop, EventLoopBuilder, EventLoopProxy};
use tao::platform::run_return::EventLoopExtRunReturn;
use tray_icon::menu::{CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use crate::icons;
use crate::menu::{Command, Entry, MenuInput, MenuModel, menu};
use crate::tray_state::TrayState;

/// What the caller does next: run headless (`NoDisplay`, `Gtk`).
#[derive(Debug, thiserror::Error)]
pub enum TrayError {
    #[error("no display (neither DISPLAY nor WAYLAND_DISPLAY is set)")]
    NoDisplay,
    #[error("the desktop toolkit did not start: {0}")]
    Gtk(String),
}

/// Messages into the tray's event loop.
#[derive(Debug)]
pub enum TrayMessage {
    Update(Box<MenuInput>),
    Clicked(String),
    Exit,
}

/// The agent thread's handle on the tray: cheap to clone, `Send`.
#[derive(Clone)]
pub struct TrayHandle {
    proxy: EventLoopProxy<TrayMessage>,
}

impl TrayHandle {
    /// Shows this state; returns false once the tray has gone.
    pub fn update(&self, input: MenuInput) -> bool {
        self.proxy
            .send_event(TrayMessage::Update(Box::new(input)))
            .is_ok()
    }

    /// Ends the tray's event loop, so that `Tray::run` returns.
    pub fn exit(&self) {
        let _ = self.proxy.send_event(TrayMessage::Exit);
    }
}

/// Whether a graphical session is there to show a tray in.
pub fn display_available() -> bool {
    if cfg!(any(windows, target_os = "macos")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

/// The tray's event loop, created on the main thread before the agent starts.
pub struct Tray {
    event_loop: EventLoop<TrayMessage>,
}

impl Tray {
    /// Must be called on the main thread.
    pub fn new() -> Result<Tray, TrayError> {
        if !display_available() {
            return Err(TrayError::NoDisplay);
        }
        let event_loop =
            quietly(|| EventLoopBuilder::<TrayMessage>::with_user_event().build()).map_err(TrayError::Gtk)?;
        let proxy = event_loop.create_proxy();
        MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
            let _ = proxy.send_event(TrayMessage::Clicked(event.id.0));
        }));
        Ok(Tray { event_loop })
    }

    pub fn handle(&self) -> TrayHandle {
        TrayHandle {
            proxy: self.event_loop.create_proxy(),
        }
    }

    /// Runs until [`TrayHandle::exit`]; each click becomes one `on_command` call.
    pub fn run(mut self, mut on_command: impl FnMut(Command)) {
        let mut shown = Shown::default();
        self.event_loop.run_return(move |event, _, control_flow| {
            *control_flow = ControlFlow::Wait;
            match event {
                Event::NewEvents(StartCause::Init) => shown.show(menu(&MenuInput::default())),
                Event::UserEvent(TrayMessage::Update(input)) => shown.show(menu(&input)),
                Event::UserEvent(TrayMessage::Clicked(id)) => match Command::from_id(&id) {
                    Some(command) => on_command(command),
                    None => tracing::debug!(id, "a menu item without a command"),
                },
                Event::UserEvent(TrayMessage::Exit) => {
                    shown.icon = None;
                    *control_flow = ControlFlow::Exit;
                }
                _ => {}
            }
        });
    }
}

/// What the tray shows now, so that only changes reach GTK (a rebuilt menu closes an open one).
#[derive(Default)]
struct Shown {
    icon: Option<TrayIcon>,
    model: Option<MenuModel>,
    /// The tray cannot be shown (appindicator missing); said once.
    unavailable: bool,
}

impl Shown {
    fn show(&mut self, model: MenuModel) {
        if self.unavailable || self.model.as_ref() == Some(&model) {
            return;
        }
        let previous = self.model.replace(model.clone());
        match &self.icon {
            None => self.create(&model),
            Some(tray) => {
                if previous.as_ref().map(|m| &m.entries) != Some(&model.entries) {
                    tray.set_menu(Some(Box::new(build_menu(&model.entries))));
                }
                if previous.as_ref().map(|m| m.state) != Some(model.state)
                    && let Some(icon) = icon(model.state)
                {
                    let _ = tray.set_icon(Some(icon));
                }
                if previous.as_ref().map(|m| &m.tooltip) != Some(&model.tooltip) {
                    // Some trays (appindicator) show no tooltip: the log says what it would.
                    tracing::debug!(tooltip = %model.tooltip, "tray tooltip");
                }
                let _ = tray.set_tooltip(Some(&model.tooltip));
            }
        }
    }

    fn create(&mut self, model: &MenuModel) {
        let mut builder = TrayIconBuilder::new()
            .with_id("opconnect")
            .with_title("opconnect")
            .with_tooltip(&model.tooltip)
            .with_menu(Box::new(build_menu(&model.entries)));
        if let Some(icon) = icon(model.state) {
            builder = builder.with_icon(icon);
        }
        // tray-icon panics (rather than failing) when libayatana-appindicator3 cannot be loaded.
        match quietly(|| builder.build()) {
            Ok(Ok(tray)) => {
                tracing::info!(state = model.state.name(), "tray icon shown");
                self.icon = Some(tray);
            }
            Ok(Err(e)) => self.give_up(&e.to_string()),
            Err(panic) => self.give_up(&format!(
                "{panic}; install libayatana-appindicator3-1 (Debian, Ubuntu) or \
                 libappindicator-gtk3 for the tray icon"
            )),
        }
    }

    fn give_up(&mut self, why: &str) {
        tracing::error!("no tray icon: {why}. The agent keeps running and notifications still work.");
        self.unavailable = true;
    }
}

fn icon(state: TrayState) -> Option<Icon> {
    let pixels = icons::pixels(state).map_err(|e| tracing::error!("{e}")).ok()?;
    Icon::from_rgba(pixels.rgba, pixels.width, pixels.height)
        .map_err(|e| tracing::error!("tray icon {}: {e}", state.name()))
        .ok()
}

/// muda reads `&` as a mnemonic marker; a literal one is `&&`.
fn text(label: &str) -> String {
    label.replace('&', "&&")
}

fn build_menu(entries: &[Entry]) -> Menu {
    let menu = Menu::new();
    for item in items(entries) {
        if let Err(e) = menu.append(item.as_ref()) {
            tracing::error!("tray menu: {e}");
        }
    }
    menu
}

fn items(entries: &[Entry]) -> Vec<Box<dyn IsMenuItem>> {
    entries
        .iter()
        .map(|entry| -> Box<dyn IsMenuItem> {
            match entry {
                Entry::Label(label) => Box::new(MenuItem::new(text(label), false, None)),
                Entry::Item { command, label } => {
                    Box::new(MenuItem::with_id(command.id(), text(label), true, None))
                }
                Entry::Check {
                    command,
                    label,
                    checked,
                    enabled,
                } => Box::new(CheckMenuItem::with_id(
                    command.id(),
                    text(label),
                    *enabled,
                    *checked,
                    None,
                )),
                Entry::Submenu { label, entries } => {
                    let submenu = Submenu::new(text(label), true);
                    for item in items(entries) {
                        if let Err(e) = submenu.append(item.as_ref()) {
                            tracing::error!("tray menu: {e}");
                        }
                    }
                    Box::new(submenu)
                }
                Entry::Separator => Box::new(PredefinedMenuItem::separator()),
            }
        })
        .collect()
}

/// Runs `f`, turning a panic into an error message without printing the panic.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into())
    })
}
