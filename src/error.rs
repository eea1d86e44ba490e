use std::path::PathBuf;

/// Library errors, one variant per exit-status kind (see `Error::exit_code`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad options, policy or column map.
    #[error("{0}")]
    Config(String),
    /// An input that cannot be opened or read as a whole.
    #[error("{}: {msg}", path.display())]
    Input { path: PathBuf, msg: String },
    /// The output directory cannot be created or written.
    #[error("{}: {msg}", path.display())]
    Output { path: PathBuf, msg: String },
    #[error("internal error: {0}")]
    Internal(String),
    /// Another run holds the output directory's lock (EX_TEMPFAIL).
    #[error("{0}")]
    Busy(String),
    /// Stopped by a signal; the staging directory was removed.
    #[error("stopped by signal {0}; the previous output is untouched")]
    Interrupted(i32),
}

impl Error {
    pub fn input(path: impl Into<PathBuf>, msg: impl Into<String>) -> Error {
        Error::Input { path: path.into(), msg: msg.into() }
    }

    pub fn output(path: impl Into<PathBuf>, msg: impl Into<String>) -> Error {
        Error::Output { path: path.into(), msg: msg.into() }
    }

    /// Exit status by kind; documented in the README (`INPUT_EXIT` for an
    /// input error).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 2,
            Error::Input { .. } => INPUT_EXIT,
            Error::Output { .. } => 4,
            Error::Internal(_) => 5,
            Error::Busy(_) => 75,
            Error::Interrupted(sig) => 128 + sig,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The exit status of an input error (also used where the process ends
/// without an `Error`: a mapped input cut short).
pub const INPUT_EXIT: i32 = 3;
