//! npm packages from module paths, and normalised names to match map sources to modules.

/// The npm package of a module path: the name after the last `node_modules/`
/// (`@scope/name` for scoped packages), or `None` for the application's own code.
///
/// ```
/// use perfkit_bundle::package_of;
/// assert_eq!(package_of("./node_modules/lodash/lodash.js").as_deref(), Some("lodash"));
/// assert_eq!(package_of("node_modules/@mui/material/Button/index.js").as_deref(), Some("@mui/material"));
/// assert_eq!(package_of("./src/index.js"), None);
/// ```
pub fn package_of(path: &str) -> Option<String> {
    let (_, name) = install_path(path)?;
    Some(name.to_owned())
}

/// The install path (everything up to and including the package directory) and the
/// package name: `("node_modules/a/node_modules/b", "b")`.
pub(crate) fn install_path(path: &str) -> Option<(&str, &str)> {
    const NM: &str = "node_modules/";
    let path = path.rsplit('!').next().unwrap_or(path);
    let idx = path.rfind(NM)?;
    let rest = &path[idx + NM.len()..];
    let mut parts = rest.splitn(3, '/');
    let first = parts.next().filter(|s| !s.is_empty())?;
    let name_len = if first.starts_with('@') {
        let second = parts.next().filter(|s| !s.is_empty())?;
        first.len() + 1 + second.len()
    } else {
        first.len()
    };
    let start = path.find(NM).unwrap_or(idx);
    let end = idx + NM.len() + name_len;
    Some((&path[start..end], &path[idx + NM.len()..end]))
}

/// A module name or map source normalised for matching: no `webpack://namespace/`
/// prefix, no loaders (`a!b!`), no query, no leading `./`, no `/./` segments.
pub(crate) fn normalize(path: &str) -> String {
    let mut p = path;
    if let Some(rest) = p.strip_prefix("webpack://") {
        // webpack://<namespace>/<path>; the namespace may be empty.
        p = rest.split_once('/').map_or(rest, |(_, after)| after);
    }
    p = p.rsplit('!').next().unwrap_or(p);
    if let Some((before, _)) = p.split_once('?') {
        p = before;
    }
    let mut out = p.replace("/./", "/");
    while let Some(rest) = out.strip_prefix("./") {
        out = rest.to_owned();
    }
    // esbuild and Vite maps name sources relative to the output directory.
    while let Some(rest) = out.strip_prefix("../") {
        out = rest.to_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_paths() {
        assert_eq!(
            install_path("./node_modules/hoist-non-react-statics/node_modules/react-is/index.js"),
            Some((
                "node_modules/hoist-non-react-statics/node_modules/react-is",
                "react-is"
            ))
        );
        assert_eq!(
            install_path("webpack://x/./node_modules/@emotion/react/dist/a.js"),
            Some(("node_modules/@emotion/react", "@emotion/react"))
        );
        assert_eq!(install_path("src/a.js"), None);
        assert_eq!(install_path("node_modules/"), None);
        assert_eq!(install_path("node_modules/@scope"), None);
    }

    #[test]
    fn normalizes_sources_and_names() {
        assert_eq!(
            normalize("webpack://bundle-research-inputs/./node_modules/lodash/lodash.js"),
            "node_modules/lodash/lodash.js"
        );
        assert_eq!(normalize("./node_modules/a/b.js"), "node_modules/a/b.js");
        assert_eq!(normalize("../node_modules/a/b.js"), "node_modules/a/b.js");
        assert_eq!(normalize("babel-loader!./src/a.js?x=1"), "src/a.js");
    }
}
