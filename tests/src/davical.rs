//! A private DAViCal 1.1 per test: CalDAV (RFC 4791) with scheduling (RFC 6638) and Apple's
//! calendar-proxy delegation, CardDAV (RFC 6352), on a private PostgreSQL, served by `php -S`
//! without Apache, as `shared/NOTES/servers.md` describes. Users come from [`crate::USERS`] with
//! DAViCal's plain `**password` form, each with a `calendar` and an `addresses` collection.
//!
//! ```text
//!   TempDir/ pg/ (PostgreSQL cluster, copied from the template)  sock/  postgres.log
//!            davical-conf.php  router.php  php.log  requests.log
//!   http://127.0.0.1:HTTP/caldav.php/<user>/             principal and calendar home
//!   http://127.0.0.1:HTTP/caldav.php/<user>/calendar/    the home calendar
//!   http://127.0.0.1:HTTP/caldav.php/<user>/addresses/   the home address book
//!   http://127.0.0.1:HTTP/caldav.php/<user>/calendar-proxy-read|write/   proxy groups
//! ```
//!
//! Start-up: `initdb` plus DAViCal's `create-database.sh` take about 4 s on 2 cores, so they run
//! once per machine into a *template* cluster (`/tmp/opconnect-davical-<key>`, keyed by the
//! PostgreSQL and DAViCal versions and [`TEMPLATE_REVISION`]; built under a temporary name and
//! renamed into place, so concurrent test processes never see half of one). Each instance copies
//! the template into its own TempDir and starts `postgres` and `php -S` on free ports.
//!
//! ```text
//!   test ──spawn (pgid, PDEATHSIG)──▶ postgres -D TempDir/pg -p PG    (as `postgres` when root)
//!        ──spawn (pgid, PDEATHSIG)──▶ php -S 127.0.0.1:HTTP router.php ──▶ DAViCal caldav.php
//!     └── Drop: SIGKILL to both groups
//! ```
//!
//! DAViCal reads its configuration only from `/etc/davical/<SERVER_NAME>-conf.php`. The router
//! sets `SERVER_NAME` to `../..<TempDir>/davical`, so that path resolves to the instance's own
//! `TempDir/davical-conf.php` (through the `/etc/davical` directory the package creates), and
//! the config sets `SERVER_NAME` back to `127.0.0.1` before DAViCal builds any URL. Nothing is
//! written outside the TempDir and the template cache.
//!
//! PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the `postgres`
//! user of the `postgresql` package and its server runs as that user; PHP runs as the test.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::dav::{DavHttp, DavServer, expect_status};
use crate::http::{HttpRequest, HttpResponse};
use crate::process::{self, Spawned};
use crate::{USERS, email_of, password_of, ports};

/// Start-up limit. With the template an instance answers in about 0.5 s; building the template
/// the first time takes about 4 s more, and a loaded CI machine gets slack.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Bump when the template's content (users, collections, settings) changes.
const TEMPLATE_REVISION: u32 = 1;

/// DAViCal's document root and database scripts (package `davical`).
const HTDOCS: &str = "/usr/share/davical/htdocs";
const CREATE_DATABASE: &str = "/usr/share/davical/dba/create-database.sh";
/// The directory DAViCal's config lookup goes through (see the module doc).
const CONFIG_DIR: &str = "/etc/davical";

/// The database owner when the tests run as root.
const PG_USER: &str = "postgres";

/// The programs an instance runs.
#[derive(Debug, Clone)]
struct Programs {
    /// PostgreSQL's server binaries (`/usr/lib/postgresql/<major>/bin`).
    pg_bin: PathBuf,
    php: PathBuf,
    psql: PathBuf,
}

impl Programs {
    fn find() -> Result<Programs> {
        let hint = "scripts/test installs davical postgresql php-cli php-pgsql php-xml php-curl";
        let mut majors: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .with_context(|| format!("PostgreSQL is not installed ({hint})"))?
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((major, bin))
            })
            .collect();
        majors.sort();
        let (_, pg_bin) = majors
            .pop()
            .with_context(|| format!("no PostgreSQL server binaries under /usr/lib/postgresql ({hint})"))?;
        for (path, what) in [
            (Path::new(HTDOCS).join("caldav.php"), "DAViCal"),
            (PathBuf::from(CREATE_DATABASE), "DAViCal's create-database.sh"),
        ] {
            if !path.is_file() {
                bail!("{what} is missing: no {} ({hint})", path.display());
            }
        }
        if !Path::new(CONFIG_DIR).is_dir() {
            bail!("{CONFIG_DIR} is missing: the davical package creates it ({hint})");
        }
        Ok(Programs {
            pg_bin,
            php: process::find_program("php").context(hint)?,
            psql: process::find_program("psql").context(hint)?,
        })
    }
}

/// A running private DAViCal. Dropping it kills PHP and PostgreSQL.
pub struct Davical {
    dir: TempDir,
    programs: Programs,
    pg_port: u16,
    http_port: u16,
    /// uid and gid PostgreSQL runs as; they own `pg/` and `sock/`.
    pg_owner: Option<(u32, u32)>,
    postgres: Option<Spawned>,
    php: Option<Spawned>,
    started_in: Duration,
}

impl Davical {
    /// Starts an instance with users alice and bob. Retries with new ports if one was taken
    /// meanwhile.
    pub fn start() -> Result<Davical> {
        let began = Instant::now();
        let programs = Programs::find()?;
        let pg_owner = if process::is_root() {
            Some(
                process::lookup_user(PG_USER)
                    .context("PostgreSQL runs as `postgres` (package postgresql)")?,
            )
        } else {
            None
        };
        let template = template(&programs, pg_owner)?;
        let mut last_error = None;
        for _ in 0..3 {
            let p = ports::free_ports(2)?;
            let dir = process::short_tempdir("dv")?;
            // PostgreSQL runs as `postgres` and must reach its folders through the temp dir.
            process::chmod(dir.path(), 0o755)?;
            let mut davical = Davical {
                dir,
                programs: programs.clone(),
                pg_port: p[0],
                http_port: p[1],
                pg_owner,
                postgres: None,
                php: None,
                started_in: Duration::ZERO,
            };
            copy_cluster(&template, &davical.pg_dir())?;
            davical.write_files()?;
            match davical.spawn() {
                Ok(()) => {
                    davical.started_in = began.elapsed();
                    return Ok(davical);
                }
                Err(e)
                    if !ports::port_is_free(davical.pg_port) || !ports::port_is_free(davical.http_port) =>
                {
                    last_error = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("three attempts")).context("DAViCal: ports kept being taken")
    }

    fn pg_dir(&self) -> PathBuf {
        self.dir.path().join("pg")
    }

    fn write_files(&self) -> Result<()> {
        let d = self.dir.path();
        let sock = d.join("sock");
        fs::create_dir(&sock)?;
        if let Some((uid, gid)) = self.pg_owner {
            process::chown_recursive(&sock, uid, gid)?;
        }
        fs::write(d.join("davical-conf.php"), render_config(self.pg_port))?;
        fs::write(d.join("router.php"), render_router(d))?;
        Ok(())
    }

    fn spawn(&mut self) -> Result<()> {
        let d = self.dir.path().to_path_buf();
        let mut pg = postgres_command(
            &self.programs,
            &self.pg_dir(),
            &d.join("sock"),
            self.pg_port,
            self.pg_owner,
        );
        pg.arg("-c").arg("listen_addresses=127.0.0.1");
        let mut postgres = Spawned::spawn("postgres (DAViCal)", pg, &d.join("postgres.log"))?;
        let (programs, port) = (self.programs.clone(), self.pg_port);
        postgres.wait_ready(START_TIMEOUT, || pg_ready(&programs, port))?;
        self.postgres = Some(postgres);

        let mut php = Command::new(&self.programs.php);
        php.arg("-S")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .arg("-t")
            .arg(HTDOCS)
            .arg(d.join("router.php"))
            // Several requests at once: the agent's CalDAV and CardDAV children and multigets
            // run concurrently (PHP ≥ 7.4).
            .env("PHP_CLI_SERVER_WORKERS", "4")
            .current_dir(HTDOCS);
        let mut php = Spawned::spawn("php -S (DAViCal)", php, &d.join("php.log"))?;
        let http = self.http();
        php.wait_ready(START_TIMEOUT, || {
            ports::port_accepts(http.0)
                && http
                    .propfind("alice", password_of("alice"), "/caldav.php/alice/", 0)
                    .is_ok_and(|r| r.status == 207)
        })?;
        self.php = Some(php);
        Ok(())
    }

    /// Kills PHP and PostgreSQL; data and ports are kept for [`Davical::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut php) = self.php.take() {
            php.kill();
        }
        if let Some(mut pg) = self.postgres.take() {
            pg.kill();
        }
    }

    /// Starts the server again on the same ports with the same data.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        // A killed postgres leaves its pid file; the new one checks that the pid is gone.
        self.spawn()
            .context("DAViCal start_again (was a port taken meanwhile?)")
    }

    pub fn is_running(&self) -> bool {
        self.php.is_some()
    }

    /// How long [`Davical::start`] took until a PROPFIND as alice was answered.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The pid of `php -S` (the HTTP server).
    pub fn pid(&self) -> Option<u32> {
        self.php.as_ref().map(Spawned::pid)
    }

    /// The pid of the PostgreSQL server.
    pub fn postgres_pid(&self) -> Option<u32> {
        self.postgres.as_ref().map(Spawned::pid)
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    pub fn pg_port(&self) -> u16 {
        self.pg_port
    }

    /// `http://127.0.0.1:HTTP/caldav.php/`: what a user configures for DAViCal (CalDAV and CardDAV).
    pub fn dav_url(&self) -> String {
        self.url_of("/caldav.php/")
    }

    pub fn url_of(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// A user's principal, which DAViCal also uses as the calendar and address book home.
    pub fn principal(&self, user: &str) -> String {
        format!("/caldav.php/{user}/")
    }

    /// The calendar DAViCal creates for each user (`home_calendar_name`).
    pub fn default_calendar(&self, user: &str) -> String {
        format!("/caldav.php/{user}/calendar/")
    }

    /// The address book DAViCal creates for each user (`home_addressbook_name`).
    pub fn default_addressbook(&self, user: &str) -> String {
        format!("/caldav.php/{user}/addresses/")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("davical-conf.php")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("php.log")
    }

    /// PHP's log: DAViCal's own messages go there through `error_log`.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Every request the router saw, as `USER METHOD PATH` (USER `-` without credentials).
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `METHOD PATH` of every request `user` made.
    pub fn requests_of(&self, user: &str) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|l| l.strip_prefix(&format!("{user} ")).map(str::to_owned))
            .collect()
    }

    /// Runs SQL on the instance's database as the superuser; returns psql's unaligned output.
    pub fn sql(&self, sql: &str) -> Result<String> {
        psql(&self.programs, self.pg_port, "davical", sql)
    }

    /// `by` makes `to` their calendar proxy, as a client does it: a PROPPATCH of the
    /// `group-member-set` of `by`'s `calendar-proxy-read` or `-write` group (CalendarServer's
    /// caldav-proxy.txt §5.1; DAViCal turns it into a row of its `grants` table).
    /// Replaces the members of that group.
    pub fn grant_proxy(&self, by: &str, to: &[&str], write: bool) -> Result<()> {
        let group = format!(
            "/caldav.php/{by}/calendar-proxy-{}/",
            if write { "write" } else { "read" }
        );
        let members: String = to
            .iter()
            .map(|u| format!("<D:href>/caldav.php/{u}/</D:href>"))
            .collect();
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:group-member-set>{members}</D:group-member-set></D:prop></D:set></D:propertyupdate>"#
        );
        let r = self.send(
            &HttpRequest::new("PROPPATCH", &group)
                .auth(by, password_of(by))
                .header("Content-Type", "application/xml; charset=utf-8")
                .body(body.as_bytes()),
        )?;
        expect_status(&r, &[207], "PROPPATCH", &group)?;
        let text = r.text();
        if !text.contains("200 OK") {
            bail!("PROPPATCH {group} refused the change: {text}");
        }
        Ok(())
    }

    /// `by` lets `to` read collection `path` (one of `by`'s): a row in DAViCal's `grants` table,
    /// what its admin pages write. (`php -S` refuses the WebDAV ACL method with 501.)
    pub fn grant_read(&self, by: &str, path: &str, to: &str) -> Result<()> {
        let dav_name = path
            .strip_prefix("/caldav.php")
            .with_context(|| format!("{path} is not under /caldav.php/"))?;
        let sql = format!(
            "INSERT INTO grants (by_collection, to_principal, privileges, is_group) \
             SELECT c.collection_id, p.principal_id, privilege_to_bits(ARRAY['DAV::read']), false \
             FROM collection c, principal p JOIN usr u USING (user_no) \
             WHERE c.dav_name = '{dav_name}' AND c.user_no = (SELECT user_no FROM usr WHERE username = '{by}') \
             AND u.username = '{to}' RETURNING 1"
        );
        if self.sql(&sql)?.trim() != "1" {
            bail!("no collection {path} of {by}, or no user {to}");
        }
        Ok(())
    }

    pub fn send(&self, request: &HttpRequest<'_>) -> Result<HttpResponse> {
        self.http().send(request)
    }

    /// PROPFIND `path` as `user` with the given Depth.
    pub fn propfind(&self, user: &str, path: &str, depth: u8) -> Result<HttpResponse> {
        self.http().propfind(user, password_of(user), path, depth)
    }

    /// MKCALENDAR `/caldav.php/<user>/<slug>/` for VEVENT; returns its path.
    pub fn create_calendar(&self, user: &str, slug: &str, display_name: &str) -> Result<String> {
        self.create_calendar_for(user, slug, display_name, &["VEVENT"])
    }

    pub fn create_calendar_for(
        &self,
        user: &str,
        slug: &str,
        display_name: &str,
        components: &[&str],
    ) -> Result<String> {
        self.http().mkcalendar(
            user,
            format!("/caldav.php/{user}/{slug}/"),
            display_name,
            components,
        )
    }

    /// Extended MKCOL of address book `/caldav.php/<user>/<slug>/`; returns its path.
    pub fn create_addressbook(&self, user: &str, slug: &str, display_name: &str) -> Result<String> {
        self.http()
            .mkaddressbook(user, format!("/caldav.php/{user}/{slug}/"), display_name)
    }
}

impl DavServer for Davical {
    fn http(&self) -> DavHttp {
        DavHttp(self.http_port)
    }
}

impl Drop for Davical {
    fn drop(&mut self) {
        self.stop();
    }
}

/// DAViCal's configuration for one instance (see the module doc for `SERVER_NAME`).
fn render_config(pg_port: u16) -> String {
    format!(
        "<?php\n// Private test instance written by opconnect-tests (see shared/NOTES/servers.md).\n\
         $_SERVER['SERVER_NAME'] = '127.0.0.1';\n\
         $c->domain_name = '127.0.0.1';\n\
         $c->pg_connect[] = 'dbname=davical user=davical_app host=127.0.0.1 port={pg_port}';\n\
         $c->admin_email = 'admin@localhost';\n\
         // RFC 6638 scheduling: the outbox answers VFREEBUSY requests.\n\
         $c->enable_scheduling = true;\n"
    )
}

/// The `php -S` router: logs the request, then hands it to DAViCal's `caldav.php` with
/// `PATH_INFO` set, as Apache's rewrite rules would.
fn render_router(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"<?php
// Router for `php -S`, written by opconnect-tests: every request goes to DAViCal's caldav.php.
$_SERVER['SERVER_NAME'] = '../..{d}/davical';
$uri = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$user = isset($_SERVER['PHP_AUTH_USER']) ? $_SERVER['PHP_AUTH_USER'] : '-';
file_put_contents('{d}/requests.log', $user . ' ' . $_SERVER['REQUEST_METHOD'] . ' ' . $uri . "\n", FILE_APPEND | LOCK_EX);
$script = 'caldav.php';
$path = $uri;
if (preg_match('#^/(caldav\.php|freebusy\.php)(/.*)?$#', $uri, $m)) {{
  $script = $m[1];
  $path = isset($m[2]) ? $m[2] : '/';
}}
$_SERVER['SCRIPT_NAME'] = '/' . $script;
$_SERVER['PHP_SELF'] = '/' . $script . $path;
$_SERVER['PATH_INFO'] = $path;
$_SERVER['SCRIPT_FILENAME'] = '{HTDOCS}/' . $script;
chdir('{HTDOCS}');
require '{HTDOCS}/' . $script;
"#
    )
}

/// `postgres` for a cluster, as its owner: `fsync` and friends off, since test data need not
/// survive a power cut.
fn postgres_command(
    programs: &Programs,
    data: &Path,
    sock: &Path,
    port: u16,
    owner: Option<(u32, u32)>,
) -> Command {
    let mut cmd = Command::new(programs.pg_bin.join("postgres"));
    cmd.arg("-D")
        .arg(data)
        .arg("-k")
        .arg(sock)
        .arg("-p")
        .arg(port.to_string())
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    as_owner(&mut cmd, owner);
    cmd
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        // std drops the supplementary groups when root changes uid.
        cmd.uid(uid).gid(gid);
    }
}

/// True once the server accepts a query (`pg_isready` says "accepting connections").
fn pg_ready(programs: &Programs, port: u16) -> bool {
    let mut cmd = Command::new(programs.pg_bin.join("pg_isready"));
    cmd.args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()]);
    process::run_with_timeout(cmd, Duration::from_secs(5)).is_ok_and(|o| o.status.success())
}

fn psql(programs: &Programs, port: u16, db: &str, sql: &str) -> Result<String> {
    let mut cmd = Command::new(&programs.psql);
    cmd.args([
        "-qXAt",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-U",
        PG_USER,
        "-p",
    ])
    .arg(port.to_string())
    .args(["-d", db, "-c", sql]);
    process::run_ok(cmd, Duration::from_secs(30))
}

/// Copies the template cluster to `to` (`cp -a` keeps the owner and the 0700 mode).
fn copy_cluster(template: &Path, to: &Path) -> Result<()> {
    let mut cmd = Command::new("cp");
    cmd.arg("-a").arg(template).arg(to);
    process::run_ok(cmd, Duration::from_secs(60)).map(|_| ())
}

/// The template cluster's data directory, built if missing (see the module doc).
fn template(programs: &Programs, owner: Option<(u32, u32)>) -> Result<PathBuf> {
    let key = template_key(programs)?;
    let uid = process::current_uid();
    let root = PathBuf::from(format!("/tmp/opconnect-davical-{uid}-{key}"));
    let data = root.join("data");
    if data.join("PG_VERSION").is_file() {
        return Ok(data);
    }
    let building = PathBuf::from(format!("{}.building-{}", root.display(), std::process::id()));
    let _ = fs::remove_dir_all(&building);
    let result = build_template(programs, owner, &building);
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&building);
        return Err(e.context("building the DAViCal template cluster"));
    }
    // Another test process may have won the race: its template is as good as ours.
    if fs::rename(&building, &root).is_err() {
        let _ = fs::remove_dir_all(&building);
    }
    if !data.join("PG_VERSION").is_file() {
        bail!("the DAViCal template {} is incomplete", root.display());
    }
    Ok(data)
}

/// Versions the template depends on: PostgreSQL's major and DAViCal's schema files.
fn template_key(programs: &Programs) -> Result<String> {
    let major = programs
        .pg_bin
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("pg")
        .to_owned();
    let mut stamp = 0u64;
    for f in ["davical.sql", "base-data.sql"] {
        let m = fs::metadata(Path::new("/usr/share/davical/dba").join(f))?;
        stamp = stamp.wrapping_mul(31).wrapping_add(m.len());
        let mtime = m
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        stamp = stamp.wrapping_mul(31).wrapping_add(mtime.as_secs());
    }
    Ok(format!("pg{major}-{stamp:x}-r{TEMPLATE_REVISION}"))
}

/// initdb, DAViCal's database, the test users and their home collections; then a clean stop.
fn build_template(programs: &Programs, owner: Option<(u32, u32)>, root: &Path) -> Result<()> {
    fs::create_dir_all(root)?;
    process::chmod(root, 0o755)?;
    let data = root.join("data");
    let sock = root.join("sock");
    fs::create_dir(&sock)?;
    if let Some((uid, gid)) = owner {
        process::chown_recursive(root, uid, gid)?;
    }
    let mut initdb = Command::new(programs.pg_bin.join("initdb"));
    initdb.arg("-D").arg(&data).args([
        "-A",
        "trust",
        "-U",
        PG_USER,
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    as_owner(&mut initdb, owner);
    process::run_ok(initdb, Duration::from_secs(120))?;

    let port = ports::free_port()?;
    let pg = postgres_command(programs, &data, &sock, port, owner);
    let log = root.join("template.log");
    let mut postgres = Spawned::spawn(
        "postgres (DAViCal template)",
        {
            let mut pg = pg;
            pg.args(["-c", "listen_addresses=127.0.0.1"]);
            pg
        },
        &log,
    )?;
    postgres.wait_ready(START_TIMEOUT, || pg_ready(programs, port))?;

    let mut create = Command::new("sh");
    create
        .arg(CREATE_DATABASE)
        .args(["davical", "admin-pw"])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGUSER", PG_USER);
    let out = process::run_ok(create, Duration::from_secs(120))?;
    if !out.contains("has been set to") {
        bail!("create-database.sh did not finish:\n{out}");
    }
    psql(programs, port, "davical", &provisioning_sql())?;
    // A clean shutdown (SIGINT: "fast"), so that the copies need no crash recovery.
    postgres.signal_group(libc::SIGINT);
    let stopped = postgres.terminate(Duration::from_secs(20));
    if stopped.is_none() {
        bail!(
            "the template's postgres did not stop; log:\n{}",
            process::log_tail(&log, 20)
        );
    }
    let _ = fs::remove_dir_all(&sock);
    Ok(())
}

/// The test users as DAViCal's admin pages would create them: a `usr` row with a `**plain`
/// password, a Person principal with DAViCal's default privileges, and the home collections
/// `calendar` and `addresses` (the scheduling inbox and outbox DAViCal creates on first use).
fn provisioning_sql() -> String {
    let mut sql = String::from("BEGIN;\n");
    for (user, pw) in USERS {
        let full = format!("{}{}", user[..1].to_ascii_uppercase(), &user[1..]);
        sql.push_str(&format!(
            "INSERT INTO usr (active, email_ok, updated, username, password, fullname, email) \
             VALUES (true, current_date, current_date, '{user}', '**{pw}', '{full}', '{email}');\n",
            email = email_of(user),
        ));
    }
    let names: Vec<String> = USERS.iter().map(|(u, _)| format!("'{u}'")).collect();
    let names = names.join(",");
    sql.push_str(&format!(
        "INSERT INTO principal (type_id, user_no, displayname, default_privileges) \
         SELECT 1, user_no, fullname, privilege_to_bits(ARRAY['read-free-busy','schedule-deliver']) \
         FROM usr WHERE username IN ({names});\n\
         INSERT INTO collection (user_no, parent_container, dav_name, dav_etag, dav_displayname, \
           is_calendar, is_addressbook, created, modified, resourcetypes) \
         SELECT user_no, '/'||username||'/', '/'||username||'/'||v.name||'/', '-1', fullname||v.suffix, \
           v.is_cal, v.is_ab, now(), now(), v.rt \
         FROM usr, (VALUES \
           ('calendar', ' calendar', true, false, '<DAV::collection/><urn:ietf:params:xml:ns:caldav:calendar/>'), \
           ('addresses', ' addressbook', false, true, '<DAV::collection/><urn:ietf:params:xml:ns:carddav:addressbook/>') \
         ) AS v(name, suffix, is_cal, is_ab, rt) WHERE username IN ({names});\n\
         COMMIT;\n"
    ));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_points_the_config_lookup_at_the_instance() {
        let r = render_router(Path::new("/tmp/dvX"));
        assert!(
            r.contains("$_SERVER['SERVER_NAME'] = '../../tmp/dvX/davical';"),
            "{r}"
        );
        // /etc/davical/../../tmp/dvX/davical-conf.php is /tmp/dvX/davical-conf.php.
        let resolved = Path::new(CONFIG_DIR).join("../../tmp/dvX/davical-conf.php");
        assert!(
            resolved
                .to_string_lossy()
                .ends_with("/../../tmp/dvX/davical-conf.php")
        );
        assert!(render_config(5432).contains("port=5432"));
    }

    #[test]
    fn provisioning_names_every_user() {
        let sql = provisioning_sql();
        for (user, pw) in USERS {
            assert!(sql.contains(&format!("'{user}', '**{pw}'")), "{sql}");
        }
    }
}
