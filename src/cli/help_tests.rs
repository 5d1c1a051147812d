//! `--help` of every subcommand explains every option (README sends readers there).

use super::Cli;
use clap::CommandFactory;

/// Every option and every subcommand of the whole command tree, without a description.
fn undocumented(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            missing.push(format!("{path} {}", arg.get_long().map_or(id.to_string(), |l| format!("--{l}"))));
        }
    }
    for sub in cmd.get_subcommands() {
        let sub_path = format!("{path} {}", sub.get_name());
        if sub.get_about().is_none() && sub.get_long_about().is_none() {
            missing.push(format!("{sub_path} (the subcommand)"));
        }
        undocumented(sub, &sub_path, missing);
    }
}

#[test]
fn every_option_of_every_subcommand_has_a_description() {
    let mut missing = Vec::new();
    undocumented(&Cli::command(), "ebm", &mut missing);
    assert!(missing.is_empty(), "options without a description in --help:\n  {}", missing.join("\n  "));
}

/// The walk sees flattened and nested options (so the test above can fail).
#[test]
fn the_walk_reaches_nested_options() {
    let cmd = Cli::command();
    let rbm_train = cmd.find_subcommand("rbm").and_then(|r| r.find_subcommand("train")).expect("ebm rbm train");
    assert!(rbm_train.get_arguments().any(|a| a.get_long() == Some("data")), "flattened DataArgs");
    let bare = clap::Command::new("x").arg(clap::Arg::new("n").long("n"));
    let mut missing = Vec::new();
    undocumented(&bare, "x", &mut missing);
    assert_eq!(missing, ["x --n"]);
}

/// Every command that runs work takes the same `--backend` values with the same default.
#[test]
fn every_backend_flag_is_the_one_policy() {
    fn walk(cmd: &clap::Command, path: &str, found: &mut Vec<(String, Vec<String>, Option<String>)>) {
        for arg in cmd.get_arguments().filter(|a| a.get_long() == Some("backend")) {
            let values = arg.get_possible_values().iter().map(|v| v.get_name().to_string()).collect();
            let default = arg.get_default_values().first().map(|d| d.to_string_lossy().into_owned());
            found.push((path.to_string(), values, default));
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }
    let mut found = Vec::new();
    walk(&Cli::command(), "ebm", &mut found);
    let runs: Vec<_> = found.iter().filter(|(p, _, _)| p != "ebm bench").collect();
    assert!(runs.len() >= 5, "{found:?}");
    for (path, values, default) in runs {
        assert_eq!(values, &["auto", "gpu", "cpu"], "{path}");
        assert_eq!(default.as_deref(), Some("auto"), "{path}");
    }
}

/// Every long option of the tree as (command path, flag, takes a value, help text, hidden).
fn options(cmd: &clap::Command, path: &str, found: &mut Vec<(String, String, bool, String, bool)>) {
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let help = arg.get_long_help().or(arg.get_help()).map_or_else(String::new, |h| h.to_string());
        let takes_value = arg.get_action().takes_values();
        found.push((path.to_string(), format!("--{long}"), takes_value, help, arg.is_hide_set()));
    }
    for sub in cmd.get_subcommands() {
        options(sub, &format!("{path} {}", sub.get_name()), found);
    }
}

/// One flag name, one meaning: a name used by several commands either takes a value in all of
/// them or in none, and the names whose meaning once differed between commands say the same
/// thing wherever they appear (the noise of a Langevin step: `--noise-std` is its standard
/// deviation everywhere, `--noise-scale` a multiple of sqrt(2h) where it is not the hidden
/// former spelling of `ebm sample --noise-std`; `--out` names a file written; `mlp:` a weights
/// file, never a list of widths).
#[test]
fn one_flag_name_has_one_meaning_across_commands() {
    let mut found = Vec::new();
    options(&Cli::command(), "ebm", &mut found);
    let mut kinds: std::collections::BTreeMap<&str, Vec<(&str, bool)>> = Default::default();
    for (path, flag, takes_value, _, _) in &found {
        kinds.entry(flag).or_default().push((path, *takes_value));
    }
    let mixed: Vec<String> = kinds
        .iter()
        .filter(|(_, uses)| uses.iter().any(|u| u.1) && uses.iter().any(|u| !u.1))
        .map(|(flag, uses)| format!("{flag}: {uses:?}"))
        .collect();
    assert!(mixed.is_empty(), "flags that take a value in some commands and not in others:\n  {}", mixed.join("\n  "));
    // `--out` writes a file (ebm ood's former `--out SET` named an input set).
    let meanings: [(&str, &[&str]); 3] = [
        ("--noise-std", &["standard deviation"]),
        ("--noise-scale", &["multiple of sqrt(2"]),
        ("--out", &["write", "output"]),
    ];
    for (flag, phrases) in meanings {
        let uses: Vec<_> = found.iter().filter(|(_, f, _, _, hidden)| f == flag && !hidden).collect();
        assert!(!uses.is_empty(), "{flag} is used somewhere");
        for (path, _, _, help, _) in uses {
            let says = phrases.iter().any(|p| help.to_lowercase().contains(p));
            assert!(says, "{path} {flag}: its help {help:?} says none of {phrases:?}");
        }
    }
    // `mlp:` names a file of MLP weights (`--energy mlp:FILE`); `ebm train --model` describes a
    // new network in the text form, its former `mlp:WIDTHS` spelling hidden and warned about.
    let mut texts: Vec<(String, String)> = found
        .iter()
        .filter(|o| !o.4)
        .map(|(path, flag, _, help, _)| (format!("{path} {flag}"), help.clone()))
        .collect();
    abouts(&Cli::command(), "ebm", &mut texts);
    let mut files = 0;
    for (what, text) in &texts {
        for (at, _) in text.match_indices("mlp:") {
            let next = &text[at + 4..];
            let widths = next.starts_with(|c: char| c.is_ascii_digit()) || next.starts_with("IN,");
            assert!(!widths, "{what}: `mlp:` gives widths here, but names a weights file elsewhere: {text:?}");
            files += 1;
        }
    }
    assert!(files >= 2, "`mlp:` FILE appears in the help (so the check above can fail): {files}");
    let warning = super::train::model_deprecation(Some("mlp:2,128,128,1:silu")).expect("a warning");
    assert!(warning.contains("--model 2/128/silu/128/silu/1") && !warning.contains('\n'), "{warning}");
    assert_eq!(super::train::model_deprecation(Some("2/128/silu/128/silu/1")), None);
}

/// The about texts (short and long) of every command, as (command path, text).
fn abouts(cmd: &clap::Command, path: &str, found: &mut Vec<(String, String)>) {
    for text in [cmd.get_about(), cmd.get_long_about()].into_iter().flatten() {
        found.push((path.to_string(), text.to_string()));
    }
    for sub in cmd.get_subcommands() {
        abouts(sub, &format!("{path} {}", sub.get_name()), found);
    }
}

/// `ebm --help` lists every command with a one-line summary (the details are in `ebm CMD
/// --help`).
#[test]
fn every_command_has_a_one_line_summary() {
    for sub in Cli::command().get_subcommands() {
        let about = sub.get_about().map_or_else(String::new, |a| a.to_string());
        let long = sub.get_long_about().map_or_else(String::new, |a| a.to_string());
        assert!(!about.is_empty() && !about.contains('\n') && about.len() <= 90, "ebm {}: {about:?}", sub.get_name());
        assert!(long.len() > about.len(), "ebm {} --help says more than the summary", sub.get_name());
    }
}
