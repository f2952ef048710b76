//! A secret value the user gives (`secrets set`, `--secret NAME=@FILE`): from a file, an environment
//! variable, piped stdin or a hidden prompt, by one rule; never from an argument, never echoed.

use std::io::{IsTerminal, Read};
use std::path::Path;

use crate::bad_input;
use crate::prompt;
use crate::secret::Secret;

/// The value of `variable`, from the first source given: a file, an environment variable, piped stdin, a
/// hidden prompt on a terminal.
pub fn read(
    variable: &str,
    from_file: Option<&Path>,
    from_env: Option<&str>,
    yes: bool,
) -> anyhow::Result<Secret> {
    let (value, source) = if let Some(path) = from_file {
        let what = format!("--from-file {}", path.display());
        let value = read_source(ValueSource::File(path), &what)?.unwrap_or_default();
        (value, what)
    } else if let Some(name) = from_env {
        let what = format!("--from-env {name}");
        match read_source(ValueSource::Env(name), &what)? {
            Some(value) => (value, what),
            None => {
                return Err(bad_input!(
                    "--from-env {name}: the environment variable {name} is not set; export it, or give the value another way"
                ))
            }
        }
    } else if !std::io::stdin().is_terminal() {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| bad_input!("cannot read the value of `{variable}` from stdin: {e}"))?;
        (without_final_newline(text(bytes, "stdin")?), "stdin".into())
    } else if yes {
        return Err(bad_input!(
            "no value for `{variable}`: pipe it on stdin, or pass --from-file or --from-env (-y never prompts)"
        ));
    } else {
        let value = prompt::password(&format!("Value of {variable} (hidden)"))?;
        (value, "the prompt".into())
    };
    if value.is_empty() {
        return Err(bad_input!(
            "the value of `{variable}` from {source} is empty; Key Vault would store an empty secret, give the value itself"
        ));
    }
    Ok(Secret::new(value))
}

/// Where a secret value is read from.
#[derive(Clone, Copy, Debug)]
pub enum ValueSource<'a> {
    File(&'a Path),
    /// An environment variable, by name.
    Env(&'a str),
}

/// The value at `source`, by the one rule every command reads secret values with: UTF-8 text,
/// a file's one final line ending dropped, an environment variable's value as it is; `None`
/// when the variable is not set. Errors (exit 2) name `what`, the source as the user gave it,
/// never the value.
pub fn read_source(source: ValueSource<'_>, what: &str) -> anyhow::Result<Option<String>> {
    match source {
        ValueSource::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| bad_input!("cannot read {what}: {e}"))?;
            Ok(Some(without_final_newline(text(bytes, what)?)))
        }
        ValueSource::Env(name) => std::env::var_os(name)
            .map(|value| text(value.into_encoded_bytes(), what))
            .transpose(),
    }
}

/// Secret values are strings (Key Vault secrets, Secret keys read as variables): bytes that are
/// not UTF-8 are refused.
fn text(bytes: Vec<u8>, what: &str) -> anyhow::Result<String> {
    String::from_utf8(bytes).map_err(|_| {
        bad_input!("the value from {what} is not UTF-8 text; secret values are strings, so store binary data base64-encoded")
    })
}

/// Drops exactly one trailing line ending (`\n` or `\r\n`), as `echo >file` and editors add one.
fn without_final_newline(mut value: String) -> String {
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_final_newline_is_dropped() {
        assert_eq!(without_final_newline("s3cret\n".into()), "s3cret");
        assert_eq!(without_final_newline("s3cret\r\n".into()), "s3cret");
        assert_eq!(without_final_newline("s3cret\n\n".into()), "s3cret\n");
        assert_eq!(without_final_newline("a\nb".into()), "a\nb");
    }
}
