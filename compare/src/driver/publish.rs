//! `--publish`: puts a run's summary into the repository README, between
//! the markers `<!-- bench:begin -->` and `<!-- bench:end -->`, and its chart
//! into `docs/bench.svg` (for `--target T`: `<!-- bench-T:begin -->` ...
//! and `docs/bench-T.svg`, a block of its own); in scaling mode, the report and its chart into
//! `docs/scaling.md` and `docs/scaling.svg`. So the figures the repository
//! shows always come from a real run and are never typed by hand.

use std::path::Path;

/// The README block's and the chart's name: `bench`, or `bench-T` for a
/// run built for target `T`.
pub fn block_name(target: Option<&str>) -> String {
    match target {
        Some(t) => format!("bench-{t}"),
        None => "bench".into(),
    }
}

/// Replaces the README's block `name` (see [`block_name`]) with `summary`
/// and a link to the chart, written to `docs/<name>.svg`.
pub fn readme(root: &Path, summary: &str, svg: &str, name: &str) -> Result<(), String> {
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| format!("creating {}: {e}", docs.display()))?;
    let chart = docs.join(format!("{name}.svg"));
    std::fs::write(&chart, svg).map_err(|e| format!("writing {}: {e}", chart.display()))?;
    let path = root.join("README.md");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let (begin, end) = markers(name);
    let block = format!("{begin}\n{summary}\n![comparison chart](docs/{name}.svg)\n{end}");
    let updated = replace_block(&text, &block, name)
        .ok_or_else(|| format!("{} has no {begin} ... {end} block", path.display()))?;
    std::fs::write(&path, updated).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The begin and end markers of block `name`.
fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    )
}

/// Writes a scaling run's report and chart under `docs/`.
pub fn scaling(root: &Path, md: &str, svg: &str) -> Result<(), String> {
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| format!("creating {}: {e}", docs.display()))?;
    for (name, text) in [("scaling.md", md), ("scaling.svg", svg)] {
        let path = docs.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// `text` with everything from block `name`'s begin marker to its end
/// marker replaced by `block`; `None` if the markers are missing or out of
/// order.
fn replace_block(text: &str, block: &str, name: &str) -> Option<String> {
    let (begin, end) = markers(name);
    let start = text.find(&begin)?;
    let end = text[start..].find(&end)? + start + end.len();
    Some(format!("{}{block}{}", &text[..start], &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_marked_block() {
        let (b, e) = markers("bench");
        let (mb, me) = markers(&block_name(Some("x86_64-unknown-linux-musl")));
        assert_eq!(mb, "<!-- bench-x86_64-unknown-linux-musl:begin -->");
        let text = format!("intro\n{b}\nold table\n{e}\n{mb}\nmusl\n{me}\nrest\n");
        let out = replace_block(&text, &format!("{b}\nnew\n{e}"), "bench").unwrap();
        assert_eq!(
            out,
            format!("intro\n{b}\nnew\n{e}\n{mb}\nmusl\n{me}\nrest\n")
        );
        let name = block_name(Some("x86_64-unknown-linux-musl"));
        let out = replace_block(&text, &format!("{mb}\nm\n{me}"), &name).unwrap();
        assert_eq!(
            out,
            format!("intro\n{b}\nold table\n{e}\n{mb}\nm\n{me}\nrest\n")
        );
        assert!(replace_block("no markers", "x", "bench").is_none());
        assert!(replace_block(&format!("{e}{b}"), "x", "bench").is_none());
    }
}
