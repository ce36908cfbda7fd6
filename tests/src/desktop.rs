//! A private desktop session for the tray and notification tests: Xvfb (a display), a session bus
//! (`dbus-daemon --session`, what `dbus-run-session` starts), dunst (the notification server),
//! trayer (a system tray the icon docks into) and `dbus-monitor` recording every `Notify` call.
//! Screenshots by ImageMagick's `import`, clicks and keys by xdotool. All from scripts/test.
//!
//! ```text
//!  Desktop::start() ── Xvfb :N ── trayer, dunst ─┐
//!                   └─ dbus-daemon (bus socket) ─┴─ dbus-monitor → notify.log
//!  Agent::start_with(cfg, Launch { desktop: Some(desktop.env()), .. })  → `opconnect run` (tray)
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{self, Spawned};

/// Each part of the session must be up this soon.
const READY: Duration = Duration::from_secs(15);

/// A running private desktop session. Dropping it stops every part.
pub struct Desktop {
    dir: tempfile::TempDir,
    display: String,
    bus: String,
    // Dropped in reverse order of start: clients before the display and the bus.
    monitor: Option<Spawned>,
    dunst: Option<Spawned>,
    trayer: Option<Spawned>,
    dbus: Option<Spawned>,
    xvfb: Option<Spawned>,
}

/// A window's place on the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

impl Geometry {
    pub fn centre(&self) -> (i32, i32) {
        (self.x + self.width / 2, self.y + self.height / 2)
    }
}

impl Desktop {
    /// Starts the display, the bus, the tray host and the notification server. Fails (never skips)
    /// with the missing program's name when one is not installed.
    pub fn start() -> Result<Desktop> {
        for program in [
            "Xvfb",
            "dbus-daemon",
            "dunst",
            "trayer",
            "dbus-monitor",
            "xdotool",
            "import",
        ] {
            process::find_program(program).with_context(|| {
                format!("{program} is needed for the desktop tests (scripts/test installs it)")
            })?;
        }
        let dir = process::short_tempdir("desk")?;
        let mut desktop = Desktop {
            display: String::new(),
            bus: String::new(),
            monitor: None,
            dunst: None,
            trayer: None,
            dbus: None,
            xvfb: None,
            dir,
        };
        desktop.start_display()?;
        desktop.start_bus()?;
        desktop.start_clients()?;
        Ok(desktop)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start_display(&mut self) -> Result<()> {
        // -displayfd 1: Xvfb picks a free display number and prints it on stdout (the log).
        let log = self.path("xvfb.log");
        let mut cmd = Command::new("Xvfb");
        cmd.args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ]);
        let mut xvfb = Spawned::spawn("Xvfb", cmd, &log)?;
        let mut display = None;
        xvfb.wait_ready(READY, || {
            display = fs::read_to_string(&log)
                .ok()
                .and_then(|l| l.lines().find_map(|line| line.trim().parse::<u32>().ok()));
            display.is_some()
        })?;
        self.display = format!(":{}", display.expect("display number"));
        self.xvfb = Some(xvfb);
        Ok(())
    }

    fn start_bus(&mut self) -> Result<()> {
        let socket = self.path("bus");
        let mut cmd = Command::new("dbus-daemon");
        cmd.args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address=unix:path={}", socket.display()));
        let mut dbus = Spawned::spawn("dbus-daemon", cmd, &self.path("dbus.log"))?;
        dbus.wait_ready(READY, || socket.exists())?;
        self.bus = format!("unix:path={}", socket.display());
        self.dbus = Some(dbus);
        Ok(())
    }

    fn start_clients(&mut self) -> Result<()> {
        let mut monitor = self.spawn(
            "dbus-monitor",
            // The interface's calls and signals, and every reply (for the ids Notify returns).
            &[
                "dbus-monitor",
                "--session",
                "interface='org.freedesktop.Notifications'",
                "type='method_return'",
            ],
            "notify.log",
        )?;
        let notify_log = self.path("notify.log");
        monitor.wait_ready(READY, || {
            fs::read_to_string(&notify_log).is_ok_and(|l| l.contains("NameAcquired"))
        })?;
        self.monitor = Some(monitor);

        let mut dunst = self.spawn("dunst", &["dunst"], "dunst.log")?;
        dunst.wait_ready(READY, || self.bus_name_owned("org.freedesktop.Notifications"))?;
        self.dunst = Some(dunst);

        let trayer = [
            "trayer",
            "--edge",
            "top",
            "--align",
            "right",
            "--widthtype",
            "request",
            "--height",
            "32",
            "--transparent",
            "false",
            "--tint",
            "0xdddddd",
            "--SetDockType",
            "false",
        ];
        let mut trayer = self.spawn("trayer", &trayer, "trayer.log")?;
        trayer.wait_ready(READY, || self.has_window("trayer"))?;
        self.trayer = Some(trayer);
        Ok(())
    }

    fn spawn(&self, name: &str, argv: &[&str], log: &str) -> Result<Spawned> {
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]);
        self.apply_env(&mut cmd);
        Spawned::spawn(name, cmd, &self.path(log))
    }

    /// The variables that put a program on this desktop.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DISPLAY".into(), self.display.clone()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.clone()),
            ("XDG_CURRENT_DESKTOP".into(), "opconnect-test".into()),
        ]
    }

    fn apply_env(&self, cmd: &mut Command) {
        cmd.env_remove("WAYLAND_DISPLAY");
        for (key, value) in self.env() {
            cmd.env(key, value);
        }
    }

    /// Runs a desktop tool (xdotool, import, dbus-send) on this desktop; its stdout.
    pub fn run(&self, argv: &[&str]) -> Result<String> {
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]);
        self.apply_env(&mut cmd);
        process::run_ok(cmd, Duration::from_secs(20))
    }

    fn bus_name_owned(&self, name: &str) -> bool {
        self.run(&[
            "dbus-send",
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            &format!("string:{name}"),
        ])
        .is_ok_and(|out| out.contains("boolean true"))
    }

    fn has_window(&self, class: &str) -> bool {
        self.windows(class).is_ok_and(|w| !w.is_empty())
    }

    /// The visible windows of a WM_CLASS, with their geometry.
    pub fn windows(&self, class: &str) -> Result<Vec<Geometry>> {
        let out = match self.run(&["xdotool", "search", "--onlyvisible", "--class", class]) {
            Ok(out) => out,
            // xdotool exits 1 when nothing matches.
            Err(_) => return Ok(Vec::new()),
        };
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|id| self.geometry(id.trim()))
            .collect()
    }

    fn geometry(&self, window: &str) -> Result<Geometry> {
        let out = self.run(&["xdotool", "getwindowgeometry", "--shell", window])?;
        let field = |key: &str| -> Result<i32> {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("no {key} in {out}"))
        };
        Ok(Geometry {
            x: field("X")?,
            y: field("Y")?,
            width: field("WIDTH")?,
            height: field("HEIGHT")?,
        })
    }

    /// Waits until a visible window of `class` satisfies `pick`.
    pub fn wait_window(
        &self,
        class: &str,
        timeout: Duration,
        pick: impl Fn(&Geometry) -> bool,
    ) -> Result<Geometry> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(g) = self.windows(class)?.into_iter().find(&pick) {
                return Ok(g);
            }
            if Instant::now() >= deadline {
                bail!("no {class} window appeared within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, (x, y): (i32, i32)) -> Result<()> {
        self.run(&[
            "xdotool",
            "mousemove",
            &x.to_string(),
            &y.to_string(),
            "click",
            "1",
        ])
        .map(drop)
    }

    pub fn keys(&self, keys: &[&str]) -> Result<()> {
        let mut argv = vec!["xdotool", "key", "--delay", "80"];
        argv.extend_from_slice(keys);
        self.run(&argv).map(drop)
    }

    /// Saves the whole screen as a PNG.
    pub fn screenshot(&self, to: &Path) -> Result<()> {
        if let Some(dir) = to.parent() {
            fs::create_dir_all(dir)?;
        }
        self.run(&["import", "-window", "root", &to.display().to_string()])
            .map(drop)
    }

    /// The colour of one screen pixel, as `[r, g, b]`.
    pub fn pixel(&self, (x, y): (i32, i32)) -> Result<[u8; 3]> {
        let out = self.run(&[
            "import",
            "-window",
            "root",
            "-crop",
            &format!("1x1+{x}+{y}"),
            "-depth",
            "8",
            "txt:-",
        ])?;
        // "0,0: (37,99,235)  #2563EB  srgb(37,99,235)"
        let hex = out
            .split_whitespace()
            .find(|w| w.starts_with('#') && w.len() >= 7)
            .with_context(|| format!("no colour in {out}"))?;
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).context("hex colour");
        Ok([byte(1)?, byte(3)?, byte(5)?])
    }

    /// Everything dbus-monitor saw on the Notifications interface so far.
    pub fn notify_log(&self) -> String {
        fs::read_to_string(self.path("notify.log")).unwrap_or_default()
    }

    /// Waits until dbus-monitor has seen a `Notify` call whose text contains `needle`.
    pub fn wait_notify(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.notify_log();
            if let Some(call) = log
                .split("method call")
                .filter(|c| c.contains("member=Notify"))
                .find(|c| c.contains(needle))
            {
                return Ok(call.to_owned());
            }
            if Instant::now() >= deadline {
                bail!("no Notify call containing {needle:?} within {timeout:?}; dbus-monitor saw:\n{log}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The id the notification server returned for a `Notify` call (as [`Desktop::wait_notify`]
    /// returned it): the reply whose `reply_serial` is the call's serial.
    pub fn notification_id(&self, call: &str) -> Result<u32> {
        let field = |text: &str, key: &str| -> Option<String> {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(|v| v.trim_end_matches(';').to_owned())
        };
        let header = call.lines().next().unwrap_or_default();
        let serial = field(header, "serial=").context("the Notify call has no serial")?;
        let sender = field(header, "sender=").context("the Notify call has no sender")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.notify_log();
            let reply = log.split("method return").skip(1).find(|r| {
                let head = r.lines().next().unwrap_or_default();
                field(head, "reply_serial=").as_deref() == Some(&serial)
                    && field(head, "destination=").as_deref() == Some(&sender)
            });
            if let Some(id) = reply
                .and_then(|r| r.lines().nth(1))
                .and_then(|l| l.trim().strip_prefix("uint32 "))
                .and_then(|n| n.trim().parse().ok())
            {
                return Ok(id);
            }
            if Instant::now() >= deadline {
                bail!("no reply to Notify serial {serial} from {sender}:\n{log}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}
