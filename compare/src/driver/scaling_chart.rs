//! scaling.svg: one panel per workload, threads on a log2 x axis, median
//! M ops/s on the y axis, one line per allocator in its report.svg colour
//! (dashed for a series pinned to one CPU), broken where a point failed or
//! did not run. Plotters' SVG backend only, like `chart.rs`.

use crate::chart::{Area, COLOURS, FONT};
use crate::scaling_model::{Column, ScalingReport, ScalingWorkload};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const WIDTH: u32 = 1400;
const TOP: u32 = 96;
const PANEL_HEIGHT: u32 = 380;

/// The scaling chart as an SVG document.
pub fn render(r: &ScalingReport) -> Result<String, String> {
    let mut svg = String::new();
    draw(r, &mut svg).map_err(|e| format!("drawing scaling.svg: {e}"))?;
    Ok(svg)
}

fn grid(n: usize) -> (usize, usize) {
    let cols = if n > 1 { 2 } else { 1 };
    (n.div_ceil(cols).max(1), cols)
}

fn draw(r: &ScalingReport, svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let (rows, cols) = grid(r.workloads.len());
    let height = TOP + rows as u32 * PANEL_HEIGHT;
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(TOP);
    legend(&top, r)?;
    let panels = rest.split_evenly((rows, cols));
    for (w, area) in r.workloads.iter().zip(&panels) {
        panel(area, r, w)?;
    }
    root.present()?;
    Ok(())
}

fn colour(r: &ScalingReport, c: &Column) -> RGBColor {
    let i = r.allocators.iter().position(|a| a.name == c.allocator);
    COLOURS[i.unwrap_or(0) % COLOURS.len()]
}

fn legend(area: &Area, r: &ScalingReport) -> Result<(), Box<dyn std::error::Error>> {
    let h = &r.header;
    let title = format!(
        "slabpool scaling: M allocator ops/s by thread count (same total work per run) · {} sizes, {} run(s) · {} · {}",
        h.suite, h.runs, h.cpu, h.date
    );
    area.draw(&Text::new(title, (20, 14), (FONT, 20).into_font()))?;
    let (mut x, mut y) = (20, 58);
    for c in &r.columns {
        if x > WIDTH as i32 - 220 {
            (x, y) = (20, y + 26);
        }
        let style = colour(r, c).stroke_width(3);
        let line = vec![(x, y), (x + 28, y)];
        if c.pinned {
            area.draw(&DashedPathElement::new(line, 6, 4, style))?;
        } else {
            area.draw(&PathElement::new(line, style))?;
        }
        let text = TextStyle::from((FONT, 17).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(c.name.clone(), (x + 36, y), text))?;
        x += 36 + 10 * c.name.len() as i32 + 30;
    }
    Ok(())
}

fn panel(
    area: &Area,
    r: &ScalingReport,
    w: &ScalingWorkload,
) -> Result<(), Box<dyn std::error::Error>> {
    let counts: Vec<usize> = w
        .rows
        .iter()
        .filter(|x| x.size.is_some())
        .map(|x| x.threads)
        .collect();
    let log = |t: usize| (t as f64).log2();
    let (lo, hi) = match (counts.first(), counts.last()) {
        (Some(&a), Some(&b)) if a < b => (log(a), log(b)),
        (Some(&a), _) => (log(a) - 1.0, log(a) + 1.0),
        _ => (0.0, 1.0),
    };
    let pad = (hi - lo) * 0.06;
    let at = |c: &Column, t: usize| r.point(&w.name, t, &c.name).and_then(|p| p.mops);
    let max = r
        .columns
        .iter()
        .flat_map(|c| counts.iter().filter_map(move |&t| at(c, t)))
        .fold(0.0, f64::max);
    let top = if max > 0.0 { max * 1.12 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&w.name, (FONT, 20))
        .margin(10)
        .margin_right(24)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(lo - pad..hi + pad, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(6)
        .y_label_formatter(&|y| format!("{y:.1}"))
        .y_desc("M ops/s")
        .x_desc("threads (log scale)")
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    // A light vertical line and a label at every thread count.
    let (bx, by) = area.get_base_pixel();
    let label = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for &t in &counts {
        let x = log(t);
        let line = PathElement::new(vec![(x, 0.0), (x, top)], RGBColor(225, 225, 225));
        chart.draw_series(std::iter::once(line))?;
        let (px, py) = chart.backend_coord(&(x, 0.0));
        area.draw(&Text::new(
            t.to_string(),
            (px - bx, py - by + 6),
            label.clone(),
        ))?;
    }
    for c in &r.columns {
        let col = colour(r, c);
        // Lines through consecutive points that have a throughput.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &t in &counts {
            match at(c, t) {
                Some(y) => runs.last_mut().expect("never empty").push((log(t), y)),
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.into_iter().filter(|p| p.len() > 1) {
            let style = col.stroke_width(2);
            if c.pinned {
                chart.draw_series(std::iter::once(DashedPathElement::new(run, 6, 4, style)))?;
            } else {
                chart.draw_series(std::iter::once(PathElement::new(run, style)))?;
            }
        }
        let marks = counts.iter().filter_map(|&t| {
            let style = if c.pinned {
                col.stroke_width(2)
            } else {
                col.filled()
            };
            at(c, t).map(|y| Circle::new((log(t), y), 4, style))
        });
        chart.draw_series(marks)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaling::tests::sample_report;

    #[test]
    fn draws_a_panel_per_workload_and_a_line_per_series() {
        let svg = render(&sample_report()).unwrap();
        assert!(svg.starts_with("<svg"));
        // Plotters writes each text on a line of its own.
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        for name in ["larson", "xmalloc", "A", "B", "A 1 CPU", "B 1 CPU"] {
            assert!(texts.contains(&name), "{name}");
        }
        // Dashed series for the pinned columns.
        assert!(svg.matches("<polyline").count() >= 4);
        assert_eq!(grid(8), (4, 2));
        assert_eq!(grid(1), (1, 1));
        assert_eq!(grid(3), (2, 2));
    }
}
