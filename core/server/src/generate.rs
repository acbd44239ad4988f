//! `tessera generate-config`: a commented config, a signing key and a
//! self-signed TLS certificate, never overwriting what exists.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::config::template::{self, Params};
use crate::config::Config;
use tessera_proto::keys::{format_key_file, SigningKey};

/// What generate-config was asked for.
pub struct Request {
    /// `--server-name`
    pub server_name: String,
    /// `--config`
    pub config: PathBuf,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--client-port`
    pub client_port: u16,
    /// `--federation-port`
    pub federation_port: u16,
}

/// Writes the files, then loads the result to prove it is valid.
pub fn run(req: Request) -> Result<(), String> {
    if req.config.exists() {
        return Err(format!("{} already exists; not overwriting it", req.config.display()));
    }
    let data_dir = req.data_dir.clone().unwrap_or_else(|| PathBuf::from("data"));
    let params = Params {
        server_name: req.server_name.clone(),
        data_dir: data_dir.to_string_lossy().into_owned(),
        client_port: req.client_port,
        federation_port: req.federation_port,
        shared_secret: random_secret().map_err(|e| e.to_string())?,
    };
    if let Some(dir) = req.config.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // The config holds the shared secret: readable by its owner only.
    write_new(&req.config, template::render(&params).as_bytes())?;

    let config = Config::load(&req.config)
        .map_err(|e| format!("the generated config does not load ({e}); is --server-name a valid server name?"));
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_file(&req.config);
            return Err(e);
        }
    };
    fs::create_dir_all(&config.data_dir).map_err(|e| format!("{}: {e}", config.data_dir.display()))?;

    if config.signing_key_path.exists() {
        println!("keeping existing signing key {}", config.signing_key_path.display());
    } else {
        let key = SigningKey::generate().map_err(|e| e.to_string())?;
        write_new(&config.signing_key_path, format_key_file(std::slice::from_ref(&key)).as_bytes())?;
        println!("wrote signing key {} to {}", key.key_id(), config.signing_key_path.display());
    }

    let fed = &config.listeners.federation;
    if let (Some(cert), Some(key)) = (&fed.tls_certificate, &fed.tls_private_key) {
        if !cert.exists() && !key.exists() {
            self_signed(&req.server_name, cert, key)?;
            println!("wrote a self-signed TLS certificate to {} (replace it before federating)", cert.display());
        }
    }
    println!("wrote {}", req.config.display());
    Ok(())
}

fn self_signed(server_name: &str, cert: &Path, key: &Path) -> Result<(), String> {
    let host = server_name.rsplit_once(':').map_or(server_name, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let generated = rcgen::generate_simple_self_signed(vec![host.to_owned()]).map_err(|e| e.to_string())?;
    write_new(key, generated.signing_key.serialize_pem().as_bytes())?;
    write_new(cert, generated.cert.pem().as_bytes())
}

/// Creates `path` with mode 0600, failing if it exists.
fn write_new(path: &Path, contents: &[u8]) -> Result<(), String> {
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        f.write_all(contents)?;
        f.sync_all()
    };
    write().map_err(|e| format!("{}: {e}", path.display()))
}

fn random_secret() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(io::Error::other)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
