//! Reading a C uAPI header for the completeness check: its `#define`s, enumerators, enum tags
//! and structs with their member names.

use std::collections::{BTreeMap, BTreeSet};

/// The names a C header defines, as the completeness test sees them.
#[derive(Default)]
pub(crate) struct HeaderNames {
    /// `#define` names, function-like or not.
    pub(crate) defines: BTreeSet<String>,
    /// Enumerators of every enum.
    pub(crate) enumerators: BTreeSet<String>,
    /// Enum tags.
    pub(crate) enum_tags: BTreeSet<String>,
    /// Struct name and its member names (anonymous union members flattened).
    pub(crate) structs: BTreeMap<String, Vec<String>>,
}

pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Removes `/* */` and `//` comments.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), Some(l)) if l < b => {
                out.push_str(&rest[..l]);
                rest = &rest[l..];
                rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
            }
            (None, Some(l)) => {
                out.push_str(&rest[..l]);
                rest = &rest[l..];
                rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
            }
            (Some(b), _) => {
                out.push_str(&rest[..b]);
                let end = rest[b + 2..].find("*/").expect("unterminated comment") + b + 4;
                out.push(' ');
                rest = &rest[end..];
            }
            (None, None) => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// The text between the brace at `open` and its matching close brace.
fn braced(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces in header");
}

/// The last identifier in a declaration, ignoring array brackets.
fn declared_name(decl: &str) -> Option<String> {
    let decl = decl.split('[').next().unwrap_or(decl);
    let end = decl.rfind(is_ident_char)? + 1;
    let start = decl[..end]
        .rfind(|c| !is_ident_char(c))
        .map_or(0, |i| i + 1);
    Some(decl[start..end].to_string())
}

pub(crate) fn parse_header(raw: &str) -> HeaderNames {
    let mut names = HeaderNames::default();

    // Preprocessor lines (joined over backslash continuations) are read, then blanked out.
    let text = strip_comments(&raw.replace("\\\n", " "));
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(directive) = trimmed.strip_prefix('#') {
            if let Some(def) = directive.trim_start().strip_prefix("define") {
                let def = def.trim_start();
                let end = def.find(|c| !is_ident_char(c)).unwrap_or(def.len());
                names.defines.insert(def[..end].to_string());
            }
            code.push('\n');
        } else {
            code.push_str(line);
            code.push('\n');
        }
    }

    // `struct NAME {` and `enum [NAME] {` definitions.
    let tokens: Vec<(usize, &str)> = {
        let mut v = Vec::new();
        let mut start = None;
        for (i, c) in code.char_indices() {
            if is_ident_char(c) {
                start.get_or_insert(i);
            } else {
                if let Some(s) = start.take() {
                    v.push((s, &code[s..i]));
                }
                if c == '{' {
                    v.push((i, "{"));
                }
            }
        }
        v
    };
    for (i, &(_, word)) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1).map(|t| t.1);
        let after = tokens.get(i + 2).copied();
        match (word, next) {
            ("struct", Some(name)) if name != "{" => {
                if let Some((open, "{")) = after {
                    let fields = braced(&code, open)
                        .split(';')
                        .map(|decl| decl.replace(['{', '}'], " ").replace("union", " "))
                        .filter_map(|decl| declared_name(&decl))
                        .collect();
                    names.structs.insert(name.to_string(), fields);
                }
            }
            ("enum", Some(next)) => {
                let open = if next == "{" {
                    Some(tokens[i + 1].0)
                } else {
                    names.enum_tags.insert(next.to_string());
                    after.filter(|t| t.1 == "{").map(|t| t.0)
                };
                if let Some(open) = open {
                    for item in braced(&code, open).split(',') {
                        if let Some(name) = declared_name(item.split('=').next().unwrap_or(item)) {
                            names.enumerators.insert(name);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    names
}
