//! The Rust side of the completeness checks: every public item of a header's Rust module (a
//! file, or every file of a module directory) must be in the header's list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::machinery::{Header, Listed};
use crate::parse::is_ident_char;

/// The Rust source of a header's module: the file itself, or every `.rs` file under the module
/// directory (sorted by path, so failures read the same everywhere). Panics on an empty directory:
/// a module the test cannot see is not a module it has checked.
pub(crate) fn rust_sources(rust: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(rust);
    let mut paths = Vec::new();
    if root.is_dir() {
        walk(&root, &mut paths);
        paths.sort();
        assert!(!paths.is_empty(), "{}: no .rs files", root.display());
    } else {
        paths.push(root);
    }
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            (path, text)
        })
        .collect()
}

/// The public item a line of Rust source declares at the top level of its file, if any:
/// `Ok(name)`; `Err(module)` for a glob re-export (`pub use module::*;`).
pub(crate) fn public_item(line: &str) -> Option<Result<&str, &str>> {
    let rest = line.strip_prefix("pub ")?;
    let rest = if let Some(name) = rest.strip_prefix("const fn ") {
        // Named right after both keywords (the test once stripped `const fn ` and then looked
        // for a keyword again, so it skipped every `const fn`).
        name
    } else if let Some(path) = rest.strip_prefix("use ") {
        if let Some(module) = path.strip_suffix("::*;") {
            return Some(Err(module));
        }
        // A re-export (`pub use a::b::Name;`) is named by its last path segment.
        path.rsplit("::").next().unwrap_or(path)
    } else {
        [
            "const ", "struct ", "union ", "type ", "fn ", "static ", "enum ",
        ]
        .iter()
        .find_map(|kw| rest.strip_prefix(kw))?
    };
    let end = rest.find(|c| !is_ident_char(c)).unwrap_or(rest.len());
    Some(Ok(&rest[..end]))
}

/// Fails for every public item of the header's Rust module that the list does not check;
/// `rust_only` names those with no C name of their own, with the reason. A module directory is
/// read whole; its glob re-exports (`pub use device::*;`) must name a file of the directory,
/// whose items are then checked where they are defined.
pub(crate) fn assert_list_covers_module(
    listed: &Listed,
    header: &Header,
    rust_only: &[(&str, &str)],
) {
    let sources = rust_sources(header.rust);
    let mut known: BTreeSet<&str> = listed.names.iter().copied().collect();
    known.extend(listed.structs.iter().map(|(s, _)| *s));
    known.extend(rust_only.iter().map(|(n, _)| *n));

    let mut unchecked = Vec::new();
    let mut items = 0usize;
    for (path, text) in &sources {
        let dir = path.parent().expect("a file has a parent");
        for line in text.lines() {
            match public_item(line) {
                None => {}
                Some(Ok(name)) => {
                    items += 1;
                    if !known.contains(name) {
                        unchecked.push(name.to_string());
                    }
                }
                Some(Err(module)) => {
                    let read = sources.iter().any(|(p, _)| {
                        *p == dir.join(format!("{module}.rs"))
                            || *p == dir.join(module).join("mod.rs")
                    });
                    if !read {
                        unchecked.push(format!("{module}::* (not a file of {})", header.rust));
                    }
                }
            }
        }
    }
    assert!(
        unchecked.is_empty(),
        "public items of {} that the ABI list does not check: {unchecked:?}",
        header.rust
    );
    eprintln!(
        "abi: {} ({} files): {items} public items, all in the list",
        header.rust,
        sources.len()
    );
}

#[test]
fn public_item_names_declarations_and_globs() {
    assert_eq!(
        public_item("pub const VFIO_TYPE: u8 = b';';"),
        Some(Ok("VFIO_TYPE"))
    );
    assert_eq!(
        public_item("pub const fn VFIO_X(n: u32) -> u32 {"),
        Some(Ok("VFIO_X"))
    );
    assert_eq!(
        public_item("pub struct vfio_info_cap_header {"),
        Some(Ok("vfio_info_cap_header"))
    );
    assert_eq!(
        public_item("pub use super::vfio::IoctlRequest;"),
        Some(Ok("IoctlRequest"))
    );
    assert_eq!(public_item("pub use device::*;"), Some(Err("device")));
    assert_eq!(public_item("    pub argsz: u32,"), None);
    assert_eq!(public_item("pub mod device;"), None);
}
