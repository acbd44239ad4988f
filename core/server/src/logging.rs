//! Log output through `tracing`: pretty or JSON lines on stderr.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingSection};

/// Installs the global subscriber. `RUST_LOG` overrides the configured level.
pub fn init(config: &LoggingSection) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_thread_names(true);
    match config.format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
