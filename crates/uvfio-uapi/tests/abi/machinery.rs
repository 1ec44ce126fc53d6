//! The machinery of the ABI test: one declarative list per header (the `abi_list!` macro) is
//! expanded into both sides of the check, a C program that prints what the header says and the
//! same facts computed from the Rust definitions; and the completeness checks, header to list and
//! Rust module to list (that one in `module.rs`). Used by `vfio.rs` and `iommufd.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) use crate::module::assert_list_covers_module;
use crate::parse::parse_header;

/// The C header a list is checked against.
pub(crate) struct Header {
    /// As included: `linux/vfio.h`.
    pub(crate) name: &'static str,
    /// The Rust module that transcribes it, relative to the crate: a file
    /// (`src/iommufd.rs`) or a module directory (`src/vfio`), whose `.rs` files are
    /// all read.
    pub(crate) rust: &'static str,
    /// A short tag for scratch directories.
    pub(crate) tag: &'static str,
    /// An include directory searched before the system's (`-I`), or the system headers.
    pub(crate) include: Option<PathBuf>,
}

impl Header {
    fn include_args(&self) -> Vec<String> {
        self.include
            .iter()
            .map(|dir| format!("-I{}", dir.display()))
            .collect()
    }
}

/// The uapi headers of the kernel source the project's test kernel is built from:
/// `$UVFIO_ABI_HEADERS` (tests/run-all.sh sets it to the full flavour's `headers/include` in the
/// VM cache). Panics with instructions when it is not set: this test does not skip.
pub(crate) fn project_kernel_headers() -> PathBuf {
    let dir = std::env::var_os("UVFIO_ABI_HEADERS").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "UVFIO_ABI_HEADERS is not set: point it at the uapi headers of the project kernel, \
             e.g. UVFIO_ABI_HEADERS=\"$(. \"$(UVFIO_VM_FLAVOR=full tests/vm/provision.sh)\" && \
             echo \"$UVFIO_VM_KERNEL_DIR/headers/include\")\" cargo test --test abi -- --include-ignored \
             (tests/run-all.sh does this)"
        )
    });
    assert!(
        dir.join("linux/vfio.h").is_file(),
        "UVFIO_ABI_HEADERS={}: no linux/vfio.h there",
        dir.display()
    );
    dir
}

/// One fact about the ABI: how C prints it and what Rust says it is.
pub(crate) struct Check {
    /// Unique name of the fact, e.g. `offsetof(vfio_irq_set, index)`.
    pub(crate) key: String,
    /// C statement fragment: a printf format for the value and the C expression.
    pub(crate) c_format: &'static str,
    /// The C expression, already cast to match `c_format`.
    pub(crate) c_expr: String,
    /// The value on the Rust side, rendered the way C prints it.
    pub(crate) rust: String,
}

impl Check {
    pub(crate) fn unsigned(key: String, c_expr: String, rust: impl Into<i128>) -> Self {
        Check {
            key,
            c_format: "%llu",
            c_expr: format!("(unsigned long long)({c_expr})"),
            rust: rust.into().to_string(),
        }
    }

    pub(crate) fn signed(key: String, c_expr: String, rust: impl Into<i128>) -> Self {
        Check {
            key,
            c_format: "%lld",
            c_expr: format!("(long long)({c_expr})"),
            rust: rust.into().to_string(),
        }
    }

    pub(crate) fn text(key: String, c_expr: String, rust: impl Into<String>) -> Self {
        Check {
            key,
            c_format: "%s",
            c_expr,
            rust: rust.into(),
        }
    }
}

/// What the list covers, by category, for the completeness tests.
pub(crate) struct Listed {
    /// Struct name and, for each, its C field names (flexible array members included).
    pub(crate) structs: Vec<(&'static str, Vec<String>)>,
    /// Every constant, string, ioctl and function name.
    pub(crate) names: Vec<&'static str>,
}

macro_rules! abi_list {
    (
        structs {
            $(
                $s:ident { $( $($cf:ident).+ $(=> $($rf:ident).+)? ),* $(,)? }
                $( [ $flex:ident : $elem:ty ] )?
            )*
        }
        consts { $( $t:ident : [ $($c:ident),* $(,)? ] )* }
        strings { $($str:ident),* $(,)? }
        ioctls { $($io:ident),* $(,)? }
        fns { $($f:ident),* $(,)? }
    ) => {
        /// Every fact of the list, C and Rust side by side.
        fn checks() -> Vec<Check> {
            let mut out = Vec::new();
            $(
                {
                    let s = stringify!($s);
                    out.push(Check::unsigned(
                        format!("sizeof(struct {s})"),
                        format!("sizeof(struct {s})"),
                        size_of::<$s>() as u64,
                    ));
                    out.push(Check::unsigned(
                        format!("_Alignof(struct {s})"),
                        format!("_Alignof(struct {s})"),
                        align_of::<$s>() as u64,
                    ));
                    $(
                        let c_path = c_name(stringify!($($cf).+));
                        let (offset, size, kind) =
                            field_info_pick!($s; [$($cf).+]; [$($($rf).+)?]);
                        out.push(Check::unsigned(
                            format!("offsetof({s}, {c_path})"),
                            format!("offsetof(struct {s}, {c_path})"),
                            offset as u64,
                        ));
                        out.push(Check::unsigned(
                            format!("sizeof({s}.{c_path})"),
                            format!("sizeof(((struct {s} *)0)->{c_path})"),
                            size as u64,
                        ));
                        out.push(Check::text(
                            format!("type of {s}.{c_path}"),
                            format!("KIND(((struct {s} *)0)->{c_path})"),
                            kind,
                        ));
                    )*
                    $(
                        let flex = stringify!($flex);
                        out.push(Check::unsigned(
                            format!("offsetof({s}, {flex}[]) == sizeof"),
                            format!("offsetof(struct {s}, {flex})"),
                            size_of::<$s>() as u64,
                        ));
                        out.push(Check::unsigned(
                            format!("sizeof({s}.{flex}[0])"),
                            format!("sizeof(((struct {s} *)0)->{flex}[0])"),
                            size_of::<$elem>() as u64,
                        ));
                        out.push(Check::text(
                            format!("type of {s}.{flex}[0]"),
                            format!("KIND(((struct {s} *)0)->{flex}[0])"),
                            short_type_name::<$elem>(),
                        ));
                    )?
                }
            )*
            $(
                $(
                    {
                        let name = stringify!($c);
                        let ty = c_int_type(stringify!($t));
                        let value: $t = $c;
                        let (key, c_expr) = (name.to_string(), format!("({ty})({name})"));
                        out.push(if is_signed(stringify!($t)) {
                            Check::signed(key, c_expr, value)
                        } else {
                            Check::unsigned(key, c_expr, value)
                        });
                        // Catches a C value that the Rust type would truncate or re-sign.
                        out.push(Check::unsigned(
                            format!("{name} fits {ty}"),
                            format!("({name}) == ({ty})({name})"),
                            1u8,
                        ));
                    }
                )*
            )*
            $(
                {
                    let value: &str = $str;
                    let name = stringify!($str).to_string();
                    out.push(Check::text(name.clone(), name, value));
                }
            )*
            $(
                {
                    let value: IoctlRequest = $io;
                    out.push(Check::unsigned(
                        stringify!($io).to_string(),
                        format!("(unsigned long)({})", stringify!($io)),
                        i128::from(value),
                    ));
                }
            )*
            $(
                for &arg in FN_INPUTS {
                    out.push(Check::unsigned(
                        format!("{}({arg:#x})", stringify!($f)),
                        format!("{}((__u32){arg}u)", stringify!($f)),
                        i128::from($f(arg)),
                    ));
                }
            )*
            out
        }

        /// The list's coverage, for the completeness tests.
        fn listed() -> Listed {
            Listed {
                structs: vec![
                    $(
                        (
                            stringify!($s),
                            vec![
                                $( c_name(stringify!($($cf).+)), )*
                                $( stringify!($flex).to_string(), )?
                            ],
                        ),
                    )*
                ],
                names: vec![
                    $( $( stringify!($c), )* )*
                    $( stringify!($str), )*
                    $( stringify!($io), )*
                    $( stringify!($f), )*
                ],
            }
        }
    };
}
pub(crate) use abi_list;

/// The three tests of one header's list, and its `header()`: `abi_matches_c_header` and
/// `list_covers_whole_header` against the project kernel's headers (ignored without
/// `UVFIO_ABI_HEADERS`), `list_covers_whole_rust_module` everywhere. Expects `checks()`,
/// `listed()` (from `abi_list!`), `SKIPPED` and `RUST_ONLY` in the invoking module.
macro_rules! header_tests {
    (name: $name:literal, rust: $rust:literal, tag: $tag:literal) => {
        /// The header, from `include` (the project kernel's headers) or none where only the
        /// Rust module is read.
        fn header(include: Option<std::path::PathBuf>) -> Header {
            Header {
                name: $name,
                rust: $rust,
                tag: $tag,
                include,
            }
        }

        #[test]
        #[ignore = "needs the project kernel's uapi headers: UVFIO_ABI_HEADERS (run by tests/run-all.sh)"]
        fn abi_matches_c_header() {
            assert_abi_matches(&checks(), &listed(), &header(Some(project_kernel_headers())));
        }

        #[test]
        #[ignore = "needs the project kernel's uapi headers: UVFIO_ABI_HEADERS (run by tests/run-all.sh)"]
        fn list_covers_whole_header() {
            assert_list_covers_header(&listed(), &header(Some(project_kernel_headers())), SKIPPED);
        }

        #[test]
        fn list_covers_whole_rust_module() {
            // Reads only the Rust module: runs everywhere.
            assert_list_covers_module(&listed(), &header(None), RUST_ONLY);
        }
    };
}
pub(crate) use header_tests;

/// Offset, size and type name of a field, by its C path or, if given, its Rust path.
macro_rules! field_info_pick {
    ($s:ident; [$($c:ident).+]; []) => {
        field_info!($s; $($c).+)
    };
    ($s:ident; [$($c:ident).+]; [$($r:ident).+]) => {
        field_info!($s; $($r).+)
    };
}
pub(crate) use field_info_pick;

/// Offset, size and type name of the field at a Rust path.
///
/// A nested path (`u.region_index`, a member of a Rust union standing in for a C anonymous
/// union) is measured as `offset_of!` of the outer field plus the member's address difference
/// inside it, because nested `offset_of!` needs Rust 1.82 and the crate's MSRV is older.
macro_rules! field_info {
    ($s:ident; $f:ident) => {{
        let value = MaybeUninit::<$s>::uninit();
        let base = value.as_ptr();
        // SAFETY: `addr_of!` only computes the address of a field inside `value`; nothing is
        // read and no reference to uninitialised memory is created.
        let place = unsafe { std::ptr::addr_of!((*base).$f) };
        (offset_of!($s, $f), pointee_size(place), pointee_type_name(place))
    }};
    ($s:ident; $f:ident $(. $rest:ident)+) => {{
        let value = MaybeUninit::<$s>::uninit();
        let base = value.as_ptr();
        // SAFETY: as above, only addresses inside `value` are computed; nothing is read.
        let (outer, place) = unsafe {
            (
                std::ptr::addr_of!((*base).$f),
                std::ptr::addr_of!((*base).$f $(. $rest)+),
            )
        };
        let inner = place as *const u8 as usize - outer as *const u8 as usize;
        (offset_of!($s, $f) + inner, pointee_size(place), pointee_type_name(place))
    }};
}
pub(crate) use field_info;

/// The C spelling of a field path written in Rust tokens (`r#type` is `type`).
pub(crate) fn c_name(tokens: &str) -> String {
    tokens.replace("r#", "").replace(' ', "")
}

/// The C type a constant of the given Rust type is used as.
pub(crate) fn c_int_type(rust: &str) -> &'static str {
    match rust {
        "u8" => "__u8",
        "u16" => "__u16",
        "u32" => "__u32",
        "u64" => "__u64",
        "i32" => "__s32",
        other => panic!("abi_list: no C type for Rust type {other}"),
    }
}

pub(crate) fn is_signed(rust: &str) -> bool {
    rust.starts_with('i')
}

pub(crate) fn pointee_size<T>(_: *const T) -> usize {
    size_of::<T>()
}

pub(crate) fn pointee_type_name<T>(_: *const T) -> String {
    let name = short_type_name::<T>();
    // `[u8; 3]` -> `[u8; _]`, as the C side prints arrays (the length is in the size check).
    match name.strip_prefix('[').and_then(|n| n.split_once(';')) {
        Some((elem, _)) => format!("[{elem}; _]"),
        None => name,
    }
}

/// `std::any::type_name` without module paths: `u32`, `*mut u64`, `vfio_iova_range`.
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::new();
    for (i, part) in full.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(part.rsplit("::").next().unwrap_or(part));
    }
    out
}

// -------------------------------------------------------------------------------------------
// Running the C side
// -------------------------------------------------------------------------------------------

/// The C compiler command: `$CC` split on whitespace, or `cc`.
fn compiler() -> (String, Vec<String>) {
    let cc = std::env::var("CC")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "cc".to_string());
    let mut words = cc.split_whitespace().map(str::to_string);
    let program = words.next().expect("non-empty CC");
    (program, words.collect())
}

fn run(cmd: &mut Command, what: &str) -> std::process::Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!(
            "ABI test cannot run: {what} failed to start ({e}): {cmd:?}\n\
             A C compiler (set $CC, default `cc`) and the Linux uAPI headers \
             (package linux-libc-dev) are required; this test does not skip."
        ),
    }
}

/// A fresh scratch directory for this process.
fn scratch_dir(tag: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("abi-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The C program printing one `key<TAB>value` line per check.
fn c_source(checks: &[Check], listed: &Listed, header: &Header) -> String {
    let mut src = String::new();
    src.push_str("/* Generated by uvfio-uapi tests/abi; do not edit. */\n");
    writeln!(
        src,
        "#include <stddef.h>\n#include <stdio.h>\n#include <{}>\n",
        header.name
    )
    .unwrap();
    src.push_str("#define KIND(x) _Generic((x), \\\n");
    for (c, rust) in [
        ("__u8", "u8"),
        ("__s8", "i8"),
        ("__u16", "u16"),
        ("__s16", "i16"),
        ("__u32", "u32"),
        ("__s32", "i32"),
        ("__u64", "u64"),
        ("__s64", "i64"),
        ("__u64 *", "*mut u64"),
        // An array field decays to a pointer in _Generic: `__u8 x[3]` prints as `[u8; _]` (its
        // size is checked separately).
        ("__u8 *", "[u8; _]"),
    ] {
        writeln!(src, "\t{c}: \"{rust}\", \\").unwrap();
    }
    for (s, _) in &listed.structs {
        writeln!(src, "\tstruct {s}: \"{s}\", \\").unwrap();
    }
    src.push_str("\tdefault: \"(other)\")\n\nint main(void)\n{\n");
    for check in checks {
        assert!(
            !check.key.contains(['"', '\\', '\t', '\n']),
            "bad key {}",
            check.key
        );
        writeln!(
            src,
            "\tprintf(\"%s\\t{}\\n\", \"{}\", {});",
            check.c_format, check.key, check.c_expr
        )
        .unwrap();
    }
    src.push_str("\treturn 0;\n}\n");
    src
}

/// Compiles and runs the C program; returns its key/value lines.
fn c_values(checks: &[Check], listed: &Listed, header: &Header) -> BTreeMap<String, String> {
    let dir = scratch_dir(header.tag);
    let src_path = dir.join("abi.c");
    let bin_path = dir.join("abi");
    std::fs::write(&src_path, c_source(checks, listed, header)).expect("write abi.c");

    let (cc, cc_args) = compiler();
    let out = run(
        Command::new(&cc)
            .args(&cc_args)
            .args(header.include_args())
            .args(["-std=c11", "-Wall", "-o"])
            .arg(&bin_path)
            .arg(&src_path),
        "the C compiler",
    );
    assert!(
        out.status.success(),
        "compiling the ABI probe {} with `{cc}` failed ({}):\n{}",
        src_path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&mut Command::new(&bin_path), "the compiled ABI probe");
    assert!(
        out.status.success(),
        "the ABI probe {} failed: {}",
        bin_path.display(),
        out.status
    );
    let stdout = String::from_utf8(out.stdout).expect("probe output is UTF-8");
    let mut map = BTreeMap::new();
    for line in stdout.lines() {
        let (key, value) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("malformed probe line {line:?}"));
        assert!(
            map.insert(key.to_string(), value.to_string()).is_none(),
            "duplicate key {key}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    map
}

/// Compiles the C side for `header` and compares every check with the Rust side.
pub(crate) fn assert_abi_matches(checks: &[Check], listed: &Listed, header: &Header) {
    let c = c_values(checks, listed, header);

    let mut failures = Vec::new();
    for check in checks {
        match c.get(&check.key) {
            None => failures.push(format!("{}: missing from the C output", check.key)),
            Some(c_value) if *c_value != check.rust => failures.push(format!(
                "{}: C = {c_value}, Rust = {}",
                check.key, check.rust
            )),
            Some(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} ABI checks differ between <{}> and {}:\n  {}",
        failures.len(),
        checks.len(),
        header.name,
        header.rust,
        failures.join("\n  ")
    );

    let fields: usize = listed.structs.iter().map(|(_, f)| f.len()).sum();
    eprintln!(
        "abi: <{}>: {} checks passed ({} structs, {} fields, {} names)",
        header.name,
        checks.len(),
        listed.structs.len(),
        fields,
        listed.names.len()
    );
}

/// Path of the header the C compiler resolves, read from its preprocessor line markers.
fn compiler_header_path(header: &Header) -> PathBuf {
    let (cc, cc_args) = compiler();
    let mut child = Command::new(&cc)
        .args(&cc_args)
        .args(header.include_args())
        .args(["-E", "-x", "c", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "ABI test cannot run: the C compiler `{cc}` failed to start ({e}). \
                 Set $CC or install gcc; this test does not skip."
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("#include <{}>\n", header.name).as_bytes())
        .expect("write to preprocessor");
    let out = child.wait_with_output().expect("preprocessor output");
    assert!(
        out.status.success(),
        "`{cc} -E` cannot include <{}>:\n{}",
        header.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let suffix = format!("/{}", header.name);
    let path = stdout
        .lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| l.split('"').nth(1))
        .find(|p| p.ends_with(&suffix))
        .unwrap_or_else(|| panic!("no line marker for {} in `{cc} -E` output", header.name));
    PathBuf::from(path)
}

/// Fails for every name of the header the list misses, and every listed name the header does
/// not have; `skipped` names the header's items deliberately left out, with the reason.
pub(crate) fn assert_list_covers_header(
    listed: &Listed,
    header: &Header,
    skipped: &[(&str, &str)],
) {
    let path = compiler_header_path(header);
    if let Some(dir) = &header.include {
        assert!(
            path.starts_with(dir),
            "<{}> resolved to {}, not under {}",
            header.name,
            path.display(),
            dir.display()
        );
    }
    let raw = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let parsed = parse_header(&raw);
    let names: BTreeSet<&str> = listed.names.iter().copied().collect();
    let skip: BTreeSet<&str> = skipped.iter().map(|(n, _)| *n).collect();
    let listed_structs: BTreeMap<&str, &Vec<String>> =
        listed.structs.iter().map(|(s, f)| (*s, f)).collect();

    let mut missing = Vec::new();
    for name in parsed.defines.iter().chain(&parsed.enumerators) {
        if !names.contains(name.as_str()) && !skip.contains(name.as_str()) {
            missing.push(format!("constant/macro {name}"));
        }
    }
    for tag in &parsed.enum_tags {
        if !skip.contains(tag.as_str()) {
            missing.push(format!("enum {tag}"));
        }
    }
    for (s, c_fields) in &parsed.structs {
        if skip.contains(s.as_str()) {
            continue;
        }
        let Some(fields) = listed_structs.get(s.as_str()) else {
            missing.push(format!("struct {s}"));
            continue;
        };
        if *fields != c_fields {
            missing.push(format!(
                "struct {s}: header fields {c_fields:?}, list has {fields:?}"
            ));
        }
    }
    // Entries of the list or allowlist that the header does not have (stale names).
    for name in &names {
        if !parsed.defines.contains(*name) && !parsed.enumerators.contains(*name) {
            missing.push(format!("{name} is listed but not in the header"));
        }
    }
    for s in listed_structs.keys() {
        if !parsed.structs.contains_key(*s) {
            missing.push(format!("struct {s} is listed but not in the header"));
        }
    }
    for (name, _) in skipped {
        let known = parsed.defines.contains(*name)
            || parsed.enum_tags.contains(*name)
            || parsed.structs.contains_key(*name);
        if !known {
            missing.push(format!("allowlisted {name} is not in the header"));
        }
    }

    assert!(
        missing.is_empty(),
        "the ABI list and {} disagree:\n  {}",
        path.display(),
        missing.join("\n  ")
    );
    eprintln!(
        "abi: {} covers {} defines, {} enumerators, {} structs (skipped: {:?})",
        path.display(),
        parsed.defines.len(),
        parsed.enumerators.len(),
        parsed.structs.len(),
        skipped
    );
}
