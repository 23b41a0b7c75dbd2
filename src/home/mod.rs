//! The embedded default: a local SoftHSM2 store in a data directory of the tool's own.
//!
//! Layout of `TEZOS_HSM_HOME` (default `$XDG_DATA_HOME/tezos-hsm`, else
//! `~/.local/share/tezos-hsm`):
//!
//! ```text
//! softhsm2.conf          SoftHSM2 configuration pointing at tokens/
//! tokens/                SoftHSM2's token files
//! pins/<label>.user-pin  generated user PIN of token <label> (0600)
//! pins/<label>.so-pin    generated security-officer PIN of token <label> (0600)
//! ```
//!
//! This is a development token: the keys are files on this disk, protected by PINs stored next
//! to them. Point `--module` at a real HSM for anything else.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cryptoki_ops::secrecy::SecretString;
use cryptoki_ops::{Module, ModuleSource, PinSource};

use crate::output::CliError;

/// Label of the token created on first use.
pub const DEFAULT_TOKEN: &str = "tezos-hsm";

/// The local store.
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// The store's directory (not created yet).
    pub fn locate() -> Result<Self, CliError> {
        let dir = if let Some(dir) = std::env::var_os("TEZOS_HSM_HOME").filter(|d| !d.is_empty()) {
            PathBuf::from(dir)
        } else if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            PathBuf::from(data).join("tezos-hsm")
        } else if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            PathBuf::from(home).join(".local/share/tezos-hsm")
        } else {
            return Err(CliError::new(
                "config",
                "cannot find a data directory: set TEZOS_HSM_HOME (or HOME)",
            ));
        };
        Ok(Self { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directories and SoftHSM2 configuration if needed, and points SoftHSM2 at
    /// them. Must run before the module is loaded, while the process has one thread.
    pub fn prepare(&self) -> Result<(), CliError> {
        let io = |what: &str, e: std::io::Error| {
            CliError::new(
                "io",
                format!("cannot {what} in {}: {e}", self.dir.display()),
            )
        };
        std::fs::create_dir_all(self.dir.join("pins")).map_err(|e| io("create pins/", e))?;
        set_mode(&self.dir.join("pins"), 0o700).map_err(|e| io("protect pins/", e))?;
        let conf = cryptoki_ops::module::softhsm2_store(&self.dir)
            .map_err(|e| io("write softhsm2.conf", e))?;
        // Edition 2021: `set_var` is safe; it runs before any other thread exists and before
        // SoftHSM2 reads its configuration (once per process, when it is loaded).
        std::env::set_var("SOFTHSM2_CONF", &conf);
        Ok(())
    }

    fn pin_path(&self, label: &str, role: &str) -> PathBuf {
        self.dir.join("pins").join(format!("{label}.{role}-pin"))
    }

    /// Where the user PIN of `label` comes from.
    pub fn user_pin(&self, label: &str) -> PinSource {
        PinSource::File(self.pin_path(label, "user"))
    }

    /// Where the SO PIN of `label` comes from.
    pub fn so_pin(&self, label: &str) -> PinSource {
        PinSource::File(self.pin_path(label, "so"))
    }

    /// Creates token `label` with generated PINs. Returns false if it already existed.
    pub fn ensure_token(&self, module: &Module, label: &str) -> Result<bool, CliError> {
        if module.tokens()?.iter().any(|t| t.label == label) {
            return Ok(false);
        }
        let so = self.new_pin(label, "so")?;
        let user = self.new_pin(label, "user")?;
        module.init_token(label, &so, &user)?;
        Ok(true)
    }

    /// Generates a random PIN and stores it, readable by the owner only.
    fn new_pin(&self, label: &str, role: &str) -> Result<SecretString, CliError> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 16]);
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes[..]))
            .map_err(|e| CliError::new("io", format!("cannot read /dev/urandom: {e}")))?;
        let pin = SecretString::from(hex::encode(&bytes[..]));
        let path = self.pin_path(label, role);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode_0600()
            .open(&path)
            .map_err(|e| CliError::new("io", format!("cannot write {}: {e}", path.display())))?;
        use cryptoki_ops::secrecy::ExposeSecret;
        file.write_all(pin.expose_secret().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| CliError::new("io", format!("cannot write {}: {e}", path.display())))?;
        Ok(pin)
    }

    /// The SoftHSM2 module, or one line saying how to install it.
    pub fn module(&self) -> Result<Module, CliError> {
        let path = ModuleSource::softhsm2().map_err(|_| {
            CliError::new(
                "module_not_found",
                "SoftHSM2 is not installed: install it with `sudo apt-get install -y softhsm2` \
                 (Fedora: dnf install softhsm; macOS: brew install softhsm), or pass --module",
            )
        })?;
        Ok(Module::load(&ModuleSource::Path(path))?)
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    #[cfg(unix)]
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
    #[cfg(not(unix))]
    fn mode_0600(&mut self) -> &mut Self {
        self
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}
