//! Free loopback ports for private servers, and which TCP connections a process holds.
//!
//! Ports are drawn at random from below the kernel's ephemeral range, so that neither outgoing
//! connections nor another test process (nextest runs each test in its own process) are likely to
//! take a port between the moment it is chosen and the moment the server binds it. A server keeps
//! its ports across `stop()` / `start_again()`.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

/// Lowest port handed out: well above the system services a test machine may run.
const FLOOR: u16 = 10_000;

/// Ports already handed out by this process, so that two servers of one test never share one.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// One free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(free_ports(1)?[0])
}

/// `n` distinct free TCP ports on 127.0.0.1.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let (lo, hi) = candidate_range();
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed = handed.get_or_insert_with(HashSet::new);
    let mut ports = Vec::with_capacity(n);
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        if tries > 10_000 {
            bail!("no free loopback port in {lo}..{hi}");
        }
        let port = lo + (random() % u64::from(hi - lo)) as u16;
        if handed.contains(&port) || ports.contains(&port) || !port_is_free(port) {
            continue;
        }
        ports.push(port);
    }
    handed.extend(&ports);
    Ok(ports)
}

/// True when 127.0.0.1:`port` can be bound right now.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// True when something accepts connections on 127.0.0.1:`port`.
pub fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// `[lo, hi)` below the kernel's ephemeral range (`ip_local_port_range`, usually 32768–60999).
fn candidate_range() -> (u16, u16) {
    let ephemeral_lo = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_lo > FLOOR + 2_000 {
        (FLOOR, ephemeral_lo)
    } else {
        (FLOOR, 65_000) // an unusual range: fall back to random ports and the bind check
    }
}

fn random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.finish()
}

/// TCP connection states as numbered in `/proc/net/tcp` (include/net/tcp_states.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    Other(u8),
}

impl TcpState {
    fn from_hex(s: &str) -> TcpState {
        match u8::from_str_radix(s, 16).unwrap_or(0) {
            0x01 => TcpState::Established,
            0x02 => TcpState::SynSent,
            0x03 => TcpState::SynRecv,
            0x04 => TcpState::FinWait1,
            0x05 => TcpState::FinWait2,
            0x06 => TcpState::TimeWait,
            0x07 => TcpState::Close,
            0x08 => TcpState::CloseWait,
            0x09 => TcpState::LastAck,
            0x0A => TcpState::Listen,
            0x0B => TcpState::Closing,
            other => TcpState::Other(other),
        }
    }
}

/// One TCP socket owned by a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConn {
    pub local_port: u16,
    pub remote_port: u16,
    pub state: TcpState,
}

/// The TCP sockets (IPv4 and IPv6) that process `pid` holds open, read from `/proc/PID/fd` and
/// `/proc/PID/net/tcp{,6}`. Sockets held by its threads count too: they share the fd table.
pub fn tcp_sockets_of(pid: u32) -> Result<Vec<TcpConn>> {
    let mut inodes = HashSet::new();
    let dir = format!("/proc/{pid}/fd");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => bail!("cannot list {dir}: {e} (has process {pid} exited?)"),
    };
    for entry in entries.flatten() {
        if let Ok(target) = fs::read_link(entry.path()) {
            let target = target.to_string_lossy();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut conns = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || !inodes.contains(f[9]) {
                continue;
            }
            conns.push(TcpConn {
                local_port: hex_port(f[1]),
                remote_port: hex_port(f[2]),
                state: TcpState::from_hex(f[3]),
            });
        }
    }
    Ok(conns)
}

/// The connections process `pid` holds to loopback port `port` in any state but LISTEN.
pub fn connections_to(pid: u32, port: u16) -> Result<Vec<TcpConn>> {
    Ok(tcp_sockets_of(pid)?
        .into_iter()
        .filter(|c| c.remote_port == port && c.state != TcpState::Listen)
        .collect())
}

fn hex_port(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| u16::from_str_radix(p, 16).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_free() {
        let ports = free_ports(8).unwrap();
        let set: HashSet<_> = ports.iter().collect();
        assert_eq!(set.len(), 8);
        for p in ports {
            assert!(p >= FLOOR);
            assert!(port_is_free(p));
        }
    }

    #[test]
    fn own_connection_is_seen() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let conns = connections_to(std::process::id(), port).unwrap();
        assert_eq!(conns.len(), 1, "{conns:?}");
        assert_eq!(conns[0].state, TcpState::Established);
    }
}
