//! The Debian package (issue 11) through its whole life on this machine: `scripts/package`
//! builds it from the tested binary, apt installs it with its dependencies, the installed
//! `/usr/bin/opconnect` reaches `online` against private Dovecot and Radicale, and a purge leaves
//! no file behind. Needs root (CI is); a non-root run fails with the reason.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::agent::Launch;
use opconnect_tests::{Agent, Dovecot, Radicale, config_for, process};
use serde_json::json;

const PACKAGE_TIMEOUT: Duration = Duration::from_secs(300);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(argv: &[&str], timeout: Duration) -> Result<String> {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).current_dir(workspace());
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    process::run_ok(cmd, timeout).with_context(|| format!("{argv:?}"))
}

/// Every path under the directories a package may write to.
fn snapshot() -> BTreeSet<PathBuf> {
    let mut paths = BTreeSet::new();
    let mut stack: Vec<PathBuf> = ["/usr", "/etc", "/opt", "/var/lib/opconnect"]
        .map(PathBuf::from)
        .to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            paths.insert(path);
        }
    }
    paths
}

#[test]
fn the_debian_package_installs_runs_and_purges_cleanly() -> Result<()> {
    ensure!(
        process::is_root(),
        "installing a package needs root: run this test as root (CI does)"
    );
    let out = tempfile::tempdir()?;
    let built = run(
        &[
            "bash",
            "scripts/package",
            "--test-build",
            "--output",
            &out.path().display().to_string(),
        ],
        PACKAGE_TIMEOUT,
    )?;
    let deb = PathBuf::from(
        built
            .lines()
            .last()
            .context("scripts/package printed nothing")?
            .trim(),
    );
    ensure!(
        deb.is_file() && deb.extension().is_some_and(|e| e == "deb"),
        "not a .deb: {built}"
    );

    // The control data: the run-time library cargo-deb cannot see is declared.
    let control = run(
        &["dpkg-deb", "--field", &deb.display().to_string(), "Depends"],
        PACKAGE_TIMEOUT,
    )?;
    ensure!(control.contains("libayatana-appindicator3-1"), "{control}");
    let scripts = run(
        &["dpkg-deb", "--info", &deb.display().to_string()],
        PACKAGE_TIMEOUT,
    )?;
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        ensure!(
            !scripts.contains(script),
            "no maintainer scripts are needed, found {script}:\n{scripts}"
        );
    }

    let _ = run(&["dpkg", "--purge", "opconnect"], PACKAGE_TIMEOUT);
    let before = snapshot();
    run(
        &["apt-get", "install", "-y", "-qq", &deb.display().to_string()],
        PACKAGE_TIMEOUT,
    )?;
    let files = run(&["dpkg", "-L", "opconnect"], PACKAGE_TIMEOUT)?;
    for path in [
        "/usr/bin/opconnect",
        "/usr/share/applications/opconnect.desktop",
        "/etc/xdg/autostart/opconnect.desktop",
        "/usr/lib/systemd/user/opconnect.service",
        "/usr/share/icons/hicolor/scalable/apps/opconnect.svg",
        "/usr/share/icons/hicolor/48x48/apps/opconnect.png",
    ] {
        ensure!(
            files.lines().any(|l| l == path),
            "{path} is not in the package:\n{files}"
        );
        ensure!(Path::new(path).exists(), "{path} was not installed");
    }
    let version = run(&["/usr/bin/opconnect", "--version"], PACKAGE_TIMEOUT)?;
    ensure!(
        version.trim() == format!("opconnect {}", env!("CARGO_PKG_VERSION")),
        "{version}"
    );
    run(
        &[
            "desktop-file-validate",
            "/usr/share/applications/opconnect.desktop",
            "/etc/xdg/autostart/opconnect.desktop",
        ],
        PACKAGE_TIMEOUT,
    )?;
    run(
        &[
            "systemd-analyze",
            "verify",
            "/usr/lib/systemd/user/opconnect.service",
        ],
        PACKAGE_TIMEOUT,
    )?;

    // The installed binary works as the agent.
    let dovecot = Dovecot::start()?;
    let radicale = Radicale::start()?;
    let launch = Launch {
        bin: Some(PathBuf::from("/usr/bin/opconnect")),
        ..Launch::default()
    };
    let mut agent = Agent::start_with(&config_for(&dovecot, &radicale, "alice"), launch)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    let folders = agent.call("mail.folders", json!({"account": "alice"}))?;
    ensure!(folders.to_string().contains("INBOX"), "{folders}");
    ensure!(
        agent.stop().is_some_and(|s| s.success()),
        "the installed agent stops cleanly on SIGTERM"
    );

    run(&["dpkg", "--purge", "opconnect"], PACKAGE_TIMEOUT)?;
    let left: Vec<&str> = files
        .lines()
        .filter(|f| f.starts_with('/') && Path::new(f).is_file())
        .collect();
    ensure!(left.is_empty(), "files left after purge: {left:?}");
    let after = snapshot();
    let new: Vec<&PathBuf> = after.difference(&before).collect();
    ensure!(new.is_empty(), "the install and purge left these behind: {new:?}");
    Ok(())
}
