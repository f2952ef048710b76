//! The shape of src/, read with syn: folders in layers (`LAYERS`), no import circle between
//! folders or files, one meaning per public type name, and only the CLI knows clap and `cli`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module is a file: `foo.rs` or `foo/mod.rs` is `["foo"]`, lib.rs is `[]` (`crate`), main.rs
/// (a crate of its own) is `["main"]`. Module A depends on module B when A names a path that
/// resolves into B: `use crate::…`, `use super::…`, `use self::…` (re-exports too) and every path
/// written `crate::…`, `super::…`, `self::…` or `spin_aks::…` in an expression, a type, a
/// pattern or a macro's tokens. A path resolves to the deepest module file it passes through;
/// `mod x;` declarations and visibilities (`pub(crate)`, `pub(in …)`) are not dependencies.
type Module = Vec<String>;

/// Where each module's file is, and the modules each one names.
struct Graph {
    files: BTreeMap<Module, PathBuf>,
    edges: BTreeMap<Module, BTreeSet<Module>>,
    /// What each file says of clap: `(file, "derives ValueEnum")`, `(file, "names clap::…")`.
    clap: Vec<(PathBuf, String)>,
    /// The public structs, enums, traits and type aliases each file defines (tests left out).
    types: Vec<(PathBuf, String)>,
}

const MAIN: &str = "main";

/// The folders of src/ (a top-level file counts as a folder of one), top to bottom. A folder may
/// use the folders after it in this table, never one before it: commands drive the pipeline, the
/// pipeline uses the model and formats, and a leaf uses no folder above it. The crate root
/// (lib.rs: `bad_input!`) is below them all. docs/architecture.md explains each row.
const LAYERS: &[(&str, &[&str])] = &[
    ("the command line", &["main", "commands", "cli"]),
    (
        "the platform",
        &["dev", "fleet", "bundle", "provision", "install"],
    ),
    (
        "the main job",
        &[
            "deploy",
            "verify",
            "push",
            "context",
            "manifests",
            "cluster",
            "attest",
            "build",
            "workload",
        ],
    ),
    ("services", &["registry", "state", "azure"]),
    ("the model and formats", &["app", "cache", "oci", "yaml"]),
    (
        "leaves",
        &[
            "secret_input",
            "prompt",
            "git",
            "secret",
            "retry",
            "redact",
            "tls",
            "file_kind",
            "interrupt",
            "output",
            "error",
        ],
    ),
];

/// The files allowed to know the command line: the CLI itself, its drivers, the binary.
fn is_cli_side(file: &Path) -> bool {
    file == Path::new("src/cli.rs")
        || file == Path::new("src/main.rs")
        || file.starts_with("src/cli")
        || file.starts_with("src/commands")
}

#[test]
fn src_has_no_import_circle() {
    let graph = graph();
    let circles: Vec<String> = strongly_connected(&graph.edges)
        .into_iter()
        .filter(|component| component.len() > 1)
        .flat_map(|component| circles_through(&graph.edges, &component))
        .collect();
    assert!(
        circles.is_empty(),
        "{} import circle(s) in src/ (each `a → b → a`: a names b, b names a):\n{}",
        circles.len(),
        circles.join("\n")
    );
}

#[test]
fn folders_use_only_the_folders_below_them() {
    let order: Vec<&str> = LAYERS
        .iter()
        .flat_map(|(_, row)| row.iter().copied())
        .collect();
    let rank = |folder: &str| order.iter().position(|f| *f == folder);
    let mut wrong: BTreeSet<String> = BTreeSet::new();
    for (from, to, file) in folder_edges(graph()) {
        match (rank(&from), rank(&to)) {
            (None, _) => wrong.insert(format!("{from} ({file}) is in no row of LAYERS: add it")),
            (_, None) if to == ROOT => false,
            (_, None) => wrong.insert(format!("{to} (named by {file}) is in no row of LAYERS: add it")),
            (Some(a), Some(b)) if b < a => wrong.insert(format!(
                "{from} → {to} ({file}): `{to}` sits above `{from}` in LAYERS; move what {file} needs below `{from}`, or the code to where it belongs"
            )),
            _ => false,
        };
    }
    assert!(
        wrong.is_empty(),
        "{} use(s) break the folder layers of tests/it/architecture.rs (docs/architecture.md):\n{}",
        wrong.len(),
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn folders_form_no_circle() {
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, to, _) in folder_edges(graph()) {
        edges.entry(vec![to.clone()]).or_default();
        edges.entry(vec![from]).or_default().insert(vec![to]);
    }
    let circles: Vec<String> = strongly_connected(&edges)
        .into_iter()
        .filter(|component| component.len() > 1)
        .flat_map(|component| circles_through(&edges, &component))
        .collect();
    assert!(
        circles.is_empty(),
        "{} circle(s) between folders of src/ (`a → b → a`: a file in a names b, one in b names a):\n{}",
        circles.len(),
        circles.join("\n")
    );
}

#[test]
fn each_public_type_name_has_one_meaning() {
    let mut defined: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (file, name) in &graph().types {
        defined
            .entry(name.as_str())
            .or_default()
            .push(file.display().to_string());
    }
    let twice: Vec<String> = defined
        .into_iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(name, files)| format!("{name}: {}", files.join(", ")))
        .collect();
    assert!(
        twice.is_empty(),
        "{} public type name(s) defined more than once in src/; name each for what it is:\n{}",
        twice.len(),
        twice.join("\n")
    );
}

/// The crate root's folder name: lib.rs, where `bad_input!` and the module list live.
const ROOT: &str = "crate";

/// Every use of one folder by another: (from, to, the first file of `from` that names `to`).
fn folder_edges(graph: &Graph) -> Vec<(String, String, String)> {
    let folder = |module: &Module| module.first().cloned().unwrap_or_else(|| ROOT.to_string());
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for (module, names) in &graph.edges {
        let from = folder(module);
        for name in names {
            let to = folder(name);
            if to != from && from != ROOT {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| graph.files[module].display().to_string());
            }
        }
    }
    edges
        .into_iter()
        .map(|((from, to), file)| (from, to, file))
        .collect()
}

#[test]
fn only_the_cli_knows_clap_and_the_cli_module() {
    let graph = graph();
    let mut wrong: Vec<String> = Vec::new();
    for (module, names) in &graph.edges {
        let file = &graph.files[module];
        let cli = names.iter().any(|n| n.first().is_some_and(|s| s == "cli"));
        if cli && !is_cli_side(file) {
            wrong.push(format!("{}: names crate::cli", file.display()));
        }
    }
    for (file, what) in &graph.clap {
        if !is_cli_side(file) {
            wrong.push(format!("{}: {what}", file.display()));
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "outside cli.rs, commands/ and main.rs, the model knows the command line:\n{}",
        wrong.join("\n")
    );
}

// ---------- reading src/ ----------

/// src/ read once for both tests, its files parsed a few at a time.
fn graph() -> &'static Graph {
    static GRAPH: std::sync::OnceLock<Graph> = std::sync::OnceLock::new();
    GRAPH.get_or_init(read_src)
}

fn read_src() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root.join("src")) {
        let entry = entry.unwrap();
        let path = entry.path().strip_prefix(root).unwrap().to_path_buf();
        if path.extension().is_some_and(|e| e == "rs") {
            files.insert(module_of(&path), path);
        }
    }
    let list: Vec<(&Module, &PathBuf)> = files.iter().collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let read: Vec<Reader> = std::thread::scope(|scope| {
        let chunks = list.chunks(list.len().div_ceil(workers));
        let handles: Vec<_> = chunks
            .map(|chunk| {
                scope.spawn(|| {
                    chunk
                        .iter()
                        .map(|(m, f)| read(root, m, f))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut edges = BTreeMap::new();
    let mut clap = Vec::new();
    let mut types = Vec::new();
    for ((module, file), reader) in list.into_iter().zip(read) {
        let names = reader
            .named
            .iter()
            .filter(|path| module != &[MAIN] || path.first().is_some_and(|s| s == "spin_aks"))
            .map(|path| deepest_module(&files, path))
            .filter(|target| target != module)
            .collect();
        edges.insert(module.clone(), names);
        clap.extend(reader.clap.into_iter().map(|what| (file.clone(), what)));
        types.extend(reader.types.into_iter().map(|name| (file.clone(), name)));
    }
    Graph {
        files,
        edges,
        clap,
        types,
    }
}

/// Parses one file and collects what it names.
fn read(root: &Path, module: &Module, file: &Path) -> Reader {
    let text = std::fs::read_to_string(root.join(file)).unwrap();
    let syntax = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut reader = Reader {
        // The binary is a crate of its own: its `crate` is itself, the library is `spin_aks`.
        scope: if module == &[MAIN] {
            Vec::new()
        } else {
            module.clone()
        },
        named: Vec::new(),
        clap: Vec::new(),
        types: Vec::new(),
        in_tests: file
            .file_stem()
            .is_some_and(|s| s == "tests" || s.to_string_lossy().starts_with("test_")),
    };
    reader.visit_file(&syntax);
    reader
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` is the root; `src/main.rs` is `main`.
fn module_of(file: &Path) -> Module {
    let mut parts: Module = file
        .strip_prefix("src")
        .unwrap()
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    match parts.last().map(String::as_str) {
        Some("lib") if parts.len() == 1 => Vec::new(),
        Some("mod") => {
            parts.pop();
            parts
        }
        _ => parts,
    }
}

/// The longest prefix of `path` (already made absolute) that is a module file.
fn deepest_module(files: &BTreeMap<Module, PathBuf>, path: &[String]) -> Module {
    let path = match path.first().map(String::as_str) {
        Some("spin_aks") => &path[1..],
        _ => path,
    };
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| files.contains_key(prefix) && prefix.as_slice() != [MAIN])
        .unwrap_or_default()
}

/// Collects the absolute paths a file names, and what it says of clap.
struct Reader {
    /// The module the visitor is in: the file's, plus inline `mod x { … }` around it.
    scope: Module,
    named: Vec<Module>,
    clap: Vec<String>,
    types: Vec<String>,
    /// Inside a `#[cfg(test)]` module, or a file of tests: its types are no API.
    in_tests: bool,
}

impl Reader {
    /// `segments` as an absolute module path when it starts at `crate`, `self`, `super` or
    /// `spin_aks`; anything else (a local name, another crate) is not a module of ours.
    fn name(&mut self, segments: &[String]) {
        if segments.first().is_some_and(|s| s == "clap") {
            self.clap.push(format!("names {}", segments.join("::")));
        }
        let mut absolute = match segments.first().map(String::as_str) {
            Some("crate") => Vec::new(),
            Some("spin_aks") => vec!["spin_aks".to_string()],
            Some("self") | Some("super") => self.scope.clone(),
            _ => return,
        };
        let mut rest = &segments[1..];
        if segments[0] == "super" {
            absolute.pop();
            while rest.first().is_some_and(|s| s == "super") {
                absolute.pop();
                rest = &rest[1..];
            }
        }
        absolute.extend(rest.iter().cloned());
        self.named.push(absolute);
    }

    /// Every path a `use` tree ends in: `use a::{b, c::d as e, f::*}` names a::b, a::c::d, a::f.
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.use_leaf(prefix, &r.ident),
            syn::UseTree::Glob(_) => self.name(&prefix.clone()),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    /// `use a::b` names a::b; `use a::{self}` names a.
    fn use_leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut path = prefix.to_vec();
        if ident != "self" || path.is_empty() {
            path.push(ident.to_string());
        }
        self.name(&path);
    }

    /// Paths inside a macro's tokens (`format!`, `matches!`, `json!` …): each run of names
    /// joined by `::`, named as any other path.
    fn tokens(&mut self, mut cursor: syn::buffer::Cursor) {
        let mut path: Vec<String> = Vec::new();
        let mut joined = false;
        while !cursor.eof() {
            if let Some((ident, next)) = cursor.ident() {
                if !joined {
                    self.end(&mut path);
                }
                path.push(ident.to_string());
                joined = false;
                cursor = next;
            } else if let Some((first, next)) = cursor.punct() {
                let second = next.punct().filter(|(p, _)| p.as_char() == ':');
                match second {
                    Some((_, after)) if first.as_char() == ':' && !path.is_empty() => {
                        joined = true;
                        cursor = after;
                    }
                    _ => {
                        self.end(&mut path);
                        joined = false;
                        cursor = next;
                    }
                }
            } else if let Some((inside, _, _, next)) = cursor.any_group() {
                self.end(&mut path);
                joined = false;
                self.tokens(inside);
                cursor = next;
            } else {
                self.end(&mut path);
                joined = false;
                cursor = cursor.token_tree().map_or(cursor, |(_, next)| next);
            }
        }
        self.end(&mut path);
    }

    fn end(&mut self, path: &mut Vec<String>) {
        if !path.is_empty() {
            let names = std::mem::take(path);
            self.name(&names);
        }
    }
}

impl<'ast> Visit<'ast> for Reader {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.name(&segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_item(&mut self, item: &'ast syn::Item) {
        let (vis, ident) = match item {
            syn::Item::Struct(i) => (&i.vis, &i.ident),
            syn::Item::Enum(i) => (&i.vis, &i.ident),
            syn::Item::Trait(i) => (&i.vis, &i.ident),
            syn::Item::Type(i) => (&i.vis, &i.ident),
            _ => return syn::visit::visit_item(self, item),
        };
        if !matches!(vis, syn::Visibility::Inherited) && !self.in_tests {
            self.types.push(ident.to_string());
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        // `mod x;` is no dependency; an inline `mod x { … }` is a scope for `self`/`super`.
        if item.content.is_some() {
            let was = self.in_tests;
            self.in_tests |= item.attrs.iter().any(|a| {
                a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test")
            });
            self.scope.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.scope.pop();
            self.in_tests = was;
        }
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        let buffer = syn::buffer::TokenBuffer::new2(mac.tokens.clone());
        self.tokens(buffer.begin());
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        if attr.path().is_ident("derive") {
            let _ = attr.parse_nested_meta(|derived| {
                let name = derived.path.segments.last().unwrap().ident.to_string();
                if ["ValueEnum", "Parser", "Args", "Subcommand"].contains(&name.as_str()) {
                    self.clap.push(format!("derives {name}"));
                }
                Ok(())
            });
        }
        syn::visit::visit_attribute(self, attr);
    }
}

// ---------- circles ----------

/// Tarjan's strongly connected components of `edges`, each sorted.
fn strongly_connected(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        components: Vec<Vec<Module>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, node: &'a Module) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.edges.get(node).into_iter().flatten() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.clone());
                    if top == node {
                        break;
                    }
                }
                component.sort();
                self.components.push(component);
            }
        }
    }
    let mut tarjan = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in edges.keys() {
        if !tarjan.index.contains_key(node) {
            tarjan.visit(node);
        }
    }
    tarjan.components.sort();
    tarjan.components
}

/// One circle per edge inside `component`: the edge, then the shortest way back (so every
/// import that closes a circle is shown); each circle once, starting at its smallest module.
fn circles_through(
    edges: &BTreeMap<Module, BTreeSet<Module>>,
    component: &[Module],
) -> Vec<String> {
    let inside: BTreeSet<&Module> = component.iter().collect();
    let mut circles = BTreeSet::new();
    for from in component {
        for to in edges[from].iter().filter(|to| inside.contains(to)) {
            // from → to → … → from, without repeating `from` at the end.
            let mut circle = vec![from.clone()];
            circle.extend(shortest_path(edges, &inside, to, from));
            circle.pop();
            let start = (0..circle.len()).min_by_key(|&i| &circle[i]).unwrap();
            circle.rotate_left(start);
            circle.push(circle[0].clone());
            let names: Vec<String> = circle.iter().map(display).collect();
            circles.insert(names.join(" → "));
        }
    }
    circles.into_iter().collect()
}

/// The modules from `start` to `goal` (both included) by the fewest edges, staying `inside`
/// (a strongly connected component: the way exists).
fn shortest_path(
    edges: &BTreeMap<Module, BTreeSet<Module>>,
    inside: &BTreeSet<&Module>,
    start: &Module,
    goal: &Module,
) -> Vec<Module> {
    let mut came_from: BTreeMap<&Module, &Module> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        if node == goal {
            break;
        }
        for next in &edges[node] {
            if inside.contains(next) && next != start && !came_from.contains_key(next) {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    let mut path = vec![goal.clone()];
    let mut node = goal;
    while node != start {
        node = came_from[node];
        path.push(node.clone());
    }
    path.reverse();
    path
}

fn display(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_string()
    } else {
        module.join("::")
    }
}

/// The settings types: every public struct named `…Settings`, and `DeployVerify`.
fn settings_types(graph: &Graph) -> BTreeMap<&str, &Path> {
    (graph.types.iter())
        .filter(|(_, name)| name.ends_with("Settings") || name == "DeployVerify")
        .map(|(file, name)| (name.as_str(), file.as_path()))
        .collect()
}

/// Settings are made from flags by the CLI's constructors (src/cli.rs, src/cli/): a struct
/// literal of one appears only there or in the file that defines it (a constructor that checks
/// its own parts), and nothing else holds one mutably (`let mut` of a `settings()` or a
/// `&mut …Settings`), so a command or step cannot make or change an unchecked setting.
#[test]
fn settings_are_made_only_by_the_cli() {
    let graph = graph();
    let settings = settings_types(graph);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wrong = Vec::new();
    for file in graph.files.values() {
        if file == Path::new("src/cli.rs") || file.starts_with("src/cli") {
            continue;
        }
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let syntax = syn::parse_file(&text).unwrap();
        let mut finder = SettingsFinder {
            settings: &settings,
            file,
            wrong: &mut wrong,
        };
        finder.visit_file(&syntax);
    }
    assert!(
        wrong.is_empty(),
        "{} setting(s) made or changed outside the CLI's constructors (src/cli/settings.rs):\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Finds settings made or held mutably in one file.
struct SettingsFinder<'a> {
    settings: &'a BTreeMap<&'a str, &'a Path>,
    file: &'a Path,
    wrong: &'a mut Vec<String>,
}

impl SettingsFinder<'_> {
    /// The settings type `path` names, when it names one.
    fn names(&self, path: &syn::Path) -> Option<(&str, &Path)> {
        let last = path.segments.last()?.ident.to_string();
        let (name, file) = self.settings.get_key_value(last.as_str())?;
        Some((name, file))
    }
}

impl<'ast> Visit<'ast> for SettingsFinder<'_> {
    fn visit_expr_struct(&mut self, expr: &'ast syn::ExprStruct) {
        if let Some((name, defined)) = self.names(&expr.path) {
            if defined != self.file {
                let file = self.file.display();
                self.wrong.push(format!("{file}: builds a {name}"));
            }
        }
        syn::visit::visit_expr_struct(self, expr);
    }

    fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
        if let (Some(_), syn::Type::Path(path)) = (reference.mutability, &*reference.elem) {
            if let Some((name, _)) = self.names(&path.path) {
                let file = self.file.display();
                self.wrong.push(format!("{file}: takes a &mut {name}"));
            }
        }
        syn::visit::visit_type_reference(self, reference);
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        let mutable = matches!(&local.pat, syn::Pat::Ident(i) if i.mutability.is_some());
        let mut init = local.init.as_ref().map(|init| &*init.expr);
        while let Some(syn::Expr::Try(syn::ExprTry { expr, .. })) = init {
            init = Some(expr);
        }
        if let (true, Some(syn::Expr::MethodCall(call))) = (mutable, init) {
            if call.method.to_string().ends_with("settings") {
                let file = self.file.display();
                self.wrong
                    .push(format!("{file}: holds `{}()` mutably", call.method));
            }
        }
        syn::visit::visit_local(self, local);
    }
}
