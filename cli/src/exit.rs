//! Exit codes (the BSD `sysexits.h` values where one fits) and the failure type that carries one.

/// How `ensi` ended, as its process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// The input data is invalid: a malformed checkpoint, a token id outside the vocabulary.
    DataError = 65,
    /// An input file or folder cannot be opened or read.
    NoInput = 66,
    /// An internal error: a bug in ensi.
    Software = 70,
    /// The output file cannot be created or written.
    CantCreate = 73,
}

/// The exit codes, for `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0   success
  2   usage error (unknown flag, malformed --tokens, ...)
  65  invalid input data (malformed checkpoint or plan, token id outside the vocabulary,
      a precision target or sequence length that cannot be met)
  66  an input file or folder cannot be read
  70  internal error (a bug in ensi)
  73  the output file cannot be written";

/// An error with the exit code it should end the process with.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: Code,
    /// What went wrong, with its cause chain.
    pub error: anyhow::Error,
}

impl Failure {
    /// `error`, ending the process with `code`.
    pub fn new(code: Code, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
        }
    }
}

impl From<ensi_checkpoint::Error> for Failure {
    fn from(error: ensi_checkpoint::Error) -> Self {
        let code = match error {
            ensi_checkpoint::Error::Io { .. } | ensi_checkpoint::Error::NoWeights { .. } => {
                Code::NoInput
            }
            _ => Code::DataError,
        };
        Self::new(code, error)
    }
}
