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
/// former spelling of `ebm sample --noise-std`).
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
    let meanings = [("--noise-std", "standard deviation"), ("--noise-scale", "multiple of sqrt(2")];
    for (flag, phrase) in meanings {
        let uses: Vec<_> = found.iter().filter(|(_, f, _, _, hidden)| f == flag && !hidden).collect();
        assert!(!uses.is_empty(), "{flag} is used somewhere");
        for (path, _, _, help, _) in uses {
            assert!(help.contains(phrase), "{path} {flag}: its help {help:?} does not say {phrase:?}");
        }
    }
}
