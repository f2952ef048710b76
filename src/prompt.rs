//! Questions on the terminal (dialoguer, drawn on stderr so stdout stays for results), asked only
//! without `-y` and when stdin and stderr are both terminals.

use std::io::IsTerminal;

use crate::bad_input;

use dialoguer::console::Term;
use dialoguer::theme::ColorfulTheme;

/// Whether a question may be asked: no `-y`, and a person at the terminal.
pub fn can_ask(yes: bool) -> bool {
    !yes && on_terminal()
}

/// Whether stdin and stderr are both terminals.
pub fn on_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// One of `items` from a select list starting at `default`; `None` when the user pressed Esc.
pub fn select(prompt: &str, items: &[String], default: usize) -> anyhow::Result<Option<usize>> {
    Ok(dialoguer::Select::with_theme(&ColorfulTheme::default())
        .with_prompt(prompt)
        .items(items)
        .default(default)
        .interact_on_opt(&Term::stderr())?)
}

/// A yes/no question, Enter meaning yes.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    Ok(dialoguer::Confirm::with_theme(&ColorfulTheme::default())
        .with_prompt(question)
        .default(true)
        .interact_on(&Term::stderr())?)
}

/// A line of text, Enter taking `default`; asked again until `parse` accepts it.
pub fn input<T>(
    prompt: &str,
    default: Option<&str>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    let theme = ColorfulTheme::default();
    let mut question = dialoguer::Input::<String>::with_theme(&theme)
        .with_prompt(prompt)
        .validate_with(|answer: &String| parse(answer.trim()).map(|_| ()));
    if let Some(default) = default {
        question = question.default(default.to_string());
    }
    let answer = question.interact_text_on(&Term::stderr())?;
    parse(answer.trim()).map_err(|e| anyhow::anyhow!(e))
}

/// A line typed without echo.
pub fn password(prompt: &str) -> anyhow::Result<String> {
    Ok(dialoguer::Password::with_theme(&ColorfulTheme::default())
        .with_prompt(prompt)
        .allow_empty_password(true)
        .interact_on(&Term::stderr())?)
}

/// Asks on the terminal, or takes defaults under `-y` or without one.
pub struct Prompter {
    interactive: bool,
}

impl Prompter {
    pub fn new(yes: bool) -> Self {
        Prompter {
            interactive: can_ask(yes),
        }
    }

    /// One of `choices`, shown by `name`; the first is the default.
    pub fn choose<T: Copy>(
        &self,
        what: &str,
        choices: &[T],
        name: fn(T) -> &'static str,
    ) -> anyhow::Result<T> {
        if !self.interactive {
            return Ok(choices[0]);
        }
        let names: Vec<String> = choices.iter().map(|c| name(*c).to_string()).collect();
        let chosen = select(what, &names, 0)?;
        chosen
            .map(|i| choices[i])
            .ok_or_else(|| bad_input!("no {} chosen", what.to_lowercase()))
    }

    /// A value `parse` accepts (asked again until it does), `default` offered.
    pub fn parsed<T: Clone + std::fmt::Display, E: std::fmt::Display>(
        &self,
        what: &str,
        default: &T,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> anyhow::Result<T> {
        if !self.interactive {
            return Ok(default.clone());
        }
        input(what, Some(&default.to_string()), |answer| {
            parse(answer).map_err(|e| e.to_string())
        })
    }
}
