//! Where the config, the data and the IPC endpoint live (INTERFACE §1): flag, then environment,
//! then the platform default.

use std::path::{Path, PathBuf};

/// The resolved locations for this invocation.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub socket: PathBuf,
}

impl Paths {
    /// `config`, `data_dir` and `socket` are what clap read from the flags or the environment.
    pub fn resolve(config: Option<PathBuf>, data_dir: Option<PathBuf>, socket: Option<PathBuf>) -> Paths {
        let base = directories::BaseDirs::new();
        let config = config.unwrap_or_else(|| {
            base.as_ref()
                .map(|b| b.config_dir().join("opconnect"))
                .unwrap_or_else(|| PathBuf::from(".opconnect"))
                .join("config.toml")
        });
        let data_dir = data_dir.unwrap_or_else(|| {
            base.as_ref()
                .map(|b| b.data_dir().join("opconnect"))
                .unwrap_or_else(|| PathBuf::from(".opconnect"))
        });
        let socket = socket.unwrap_or_else(|| opconnect_ipc::default_socket_path(&data_dir));
        Paths {
            config,
            data_dir,
            socket,
        }
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
}

/// Creates `dir` private to the user (0700 on Unix): it holds the mirror and the journal.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
