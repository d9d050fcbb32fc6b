//! `--publish`: puts a run's summary into the repository README, between
//! the markers `<!-- bench:begin -->` and `<!-- bench:end -->`, and its chart
//! into `docs/bench.svg`; in scaling mode, the report and its chart into
//! `docs/scaling.md` and `docs/scaling.svg`. So the figures the repository
//! shows always come from a real run and are never typed by hand.

use std::path::Path;

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

/// Replaces the README's bench block with `summary` and a link to the chart.
pub fn readme(root: &Path, summary: &str, svg: &str) -> Result<(), String> {
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| format!("creating {}: {e}", docs.display()))?;
    let chart = docs.join("bench.svg");
    std::fs::write(&chart, svg).map_err(|e| format!("writing {}: {e}", chart.display()))?;
    let path = root.join("README.md");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let block = format!("{BEGIN}\n{summary}\n![comparison chart](docs/bench.svg)\n{END}");
    let updated = replace_block(&text, &block)
        .ok_or_else(|| format!("{} has no {BEGIN} ... {END} block", path.display()))?;
    std::fs::write(&path, updated).map_err(|e| format!("writing {}: {e}", path.display()))
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

/// `text` with everything from the begin marker to the end marker replaced
/// by `block`; `None` if the markers are missing or out of order.
fn replace_block(text: &str, block: &str) -> Option<String> {
    let start = text.find(BEGIN)?;
    let end = text[start..].find(END)? + start + END.len();
    Some(format!("{}{block}{}", &text[..start], &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_marked_block() {
        let text = format!("intro\n{BEGIN}\nold table\n{END}\nrest\n");
        let out = replace_block(&text, &format!("{BEGIN}\nnew\n{END}")).unwrap();
        assert_eq!(out, format!("intro\n{BEGIN}\nnew\n{END}\nrest\n"));
        assert!(replace_block("no markers", "x").is_none());
        assert!(replace_block(&format!("{END}{BEGIN}"), "x").is_none());
    }
}
