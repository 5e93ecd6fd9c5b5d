//! `perfkit lazy hints`: the preload tags and the `Link` header a backend renders for a page
//! of a bundled front end (Vite manifest, esbuild metafile or webpack stats).

use crate::{Outcome, output};
use anyhow::Context as _;
use perfkit_lazy::hints::{CrossOrigin, Format, HintOptions, HintSet, hints_from_path};
use serde::Serialize;
use std::path::PathBuf;

/// Arguments of `perfkit lazy`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: LazyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LazyCommand {
    /// Print the preload tags (stylesheets, entry script, modulepreload, prefetch) and the
    /// `Link` header value (for 103 Early Hints) of an entry.
    Hints(HintsArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    /// Detect from the document's top-level keys.
    Auto,
    /// Vite's `.vite/manifest.json`.
    Vite,
    /// esbuild's metafile.
    Esbuild,
    /// webpack's `--json` stats.
    Webpack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CrossOriginArg {
    /// `crossorigin` (what Vite's own HTML uses).
    Anonymous,
    /// `crossorigin="use-credentials"`.
    UseCredentials,
    /// No attribute.
    None,
}

/// Arguments of `perfkit lazy hints`.
#[derive(Debug, clap::Args)]
struct HintsArgs {
    /// The bundler output: a Vite manifest (`dist/.vite/manifest.json`), an esbuild
    /// metafile or webpack stats.
    #[arg(long, value_name = "PATH")]
    manifest: PathBuf,
    /// The entry: a Vite manifest key (`src/main.js`), an esbuild entry point or output, or a
    /// webpack entrypoint name.
    #[arg(long, value_name = "KEY")]
    entry: String,
    /// Prefix of every file in the output.
    #[arg(long, default_value = "/")]
    base: String,
    /// The format of `--manifest`.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// The `crossorigin` attribute of module tags.
    #[arg(long, value_enum, default_value = "anonymous")]
    crossorigin: CrossOriginArg,
    /// Print one JSON document: entry, script, css, modulepreload, prefetch, html, link_header.
    #[arg(long)]
    json: bool,
}

/// The `--json` document (the issue's contract: exactly these keys).
#[derive(Debug, Serialize)]
struct HintsJson<'a> {
    entry: &'a str,
    script: &'a str,
    css: &'a [String],
    modulepreload: &'a [String],
    prefetch: &'a [String],
    html: String,
    link_header: String,
}

fn hints_json(h: &HintSet) -> HintsJson<'_> {
    HintsJson {
        entry: &h.entry,
        script: &h.script,
        css: &h.css,
        modulepreload: &h.modulepreload,
        prefetch: &h.prefetch,
        html: h.html(),
        link_header: h.link_header(),
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        LazyCommand::Hints(args) => hints(args),
    }
}

fn hints(args: HintsArgs) -> anyhow::Result<Outcome> {
    let format = match args.format {
        FormatArg::Auto => None,
        FormatArg::Vite => Some(Format::Vite),
        FormatArg::Esbuild => Some(Format::Esbuild),
        FormatArg::Webpack => Some(Format::Webpack),
    };
    let options = HintOptions {
        base: args.base,
        crossorigin: match args.crossorigin {
            CrossOriginArg::Anonymous => CrossOrigin::Anonymous,
            CrossOriginArg::UseCredentials => CrossOrigin::UseCredentials,
            CrossOriginArg::None => CrossOrigin::None,
        },
    };
    let hints =
        hints_from_path(&args.manifest, &args.entry, format, &options).with_context(|| {
            format!(
                "cannot compute preload hints for entry `{}` from {}",
                args.entry,
                args.manifest.display()
            )
        })?;
    if args.json {
        output::print_json(&hints_json(&hints))?;
    } else {
        println!("{}", hints.html());
        println!();
        println!("Link: {}", hints.link_header());
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfkit_lazy::hints::ViteManifest;

    #[test]
    fn the_json_document_has_exactly_the_contract_keys() {
        let m = ViteManifest::from_json(
            r#"{"main.js": {"file": "assets/main.js", "css": ["assets/main.css"], "imports": ["_a.js"], "dynamicImports": ["b.js"]},
                "_a.js": {"file": "assets/a.js"}, "b.js": {"file": "assets/b.js"}}"#,
        )
        .unwrap();
        let h = m.hints("main.js", &HintOptions::default()).unwrap();
        let v = serde_json::to_value(hints_json(&h)).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "css",
                "entry",
                "html",
                "link_header",
                "modulepreload",
                "prefetch",
                "script"
            ]
        );
        assert_eq!(v["entry"], "main.js");
        assert_eq!(v["script"], "/assets/main.js");
        assert_eq!(v["css"][0], "/assets/main.css");
        assert_eq!(v["modulepreload"][0], "/assets/a.js");
        assert_eq!(v["prefetch"][0], "/assets/b.js");
    }
}
