//! report.svg: two grouped bar charts (time ÷ System, peak RSS ÷ System),
//! workloads on the x axis, one colour per allocator, a shared legend; the
//! main suite's workloads (the small programs only when only they ran).
//! Drawn with plotters' SVG backend only (no system libraries, no fonts:
//! the viewer renders the text).

use crate::model::{Cell, Report};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1040;
const TOP: u32 = 90;
/// Ratios above this are drawn cut at it, with their value printed.
const CAP: f64 = 4.0;
pub const FONT: &str = "sans-serif";

/// One colour per allocator, by its position in the report (scaling.svg
/// uses the same ones).
pub const COLOURS: [RGBColor; 8] = [
    RGBColor(150, 150, 150), // System: grey, the baseline
    RGBColor(214, 39, 40),   // slabpool: red
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// The report's charts as an SVG document: of the main suite's
/// workloads, or of the small programs if only they ran.
pub fn render(r: &Report) -> Result<String, String> {
    let mut svg = String::new();
    let small;
    let r = if r.workloads.is_empty() {
        small = r.small_view();
        &small
    } else {
        r
    };
    draw(r, &mut svg).map_err(|e| format!("drawing report.svg: {e}"))?;
    Ok(svg)
}

fn draw(r: &Report, svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(TOP);
    legend(&top, r)?;
    let (upper, lower) = rest.split_vertically((HEIGHT - TOP) / 2);
    panel(
        &upper,
        r,
        "Wall time relative to System (median; lower is better)",
        "time ÷ System's",
        |c| c.time_vs_system,
    )?;
    panel(
        &lower,
        r,
        "Peak RSS relative to System (median VmHWM; lower is better)",
        "peak RSS ÷ System's",
        |c| c.rss_vs_system,
    )?;
    root.present()?;
    Ok(())
}

fn legend(area: &Area, r: &Report) -> Result<(), Box<dyn std::error::Error>> {
    let h = &r.header;
    let title = format!(
        "slabpool comparison suite: {} suite, {} run(s), {} threads · {} · {}",
        h.suite, h.runs, h.threads, h.cpu, h.date
    );
    area.draw(&Text::new(title, (20, 14), (FONT, 20).into_font()))?;
    let mut x = 20;
    for (j, a) in r.allocators.iter().enumerate() {
        let y = 56;
        area.draw(&Rectangle::new(
            [(x, y - 8), (x + 16, y + 8)],
            COLOURS[j % COLOURS.len()].filled(),
        ))?;
        let style = TextStyle::from((FONT, 17).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(a.name.clone(), (x + 24, y), style))?;
        x += 24 + 10 * a.name.len() as i32 + 36;
    }
    Ok(())
}

fn panel(
    area: &Area,
    r: &Report,
    title: &str,
    y_desc: &str,
    ratio: impl Fn(&Cell) -> Option<f64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (n, k) = (r.workloads.len(), r.allocators.len());
    let values: Vec<Vec<Option<&Cell>>> = r
        .workloads
        .iter()
        .map(|w| {
            r.allocators
                .iter()
                .map(|a| r.cell(&w.name, &a.name))
                .collect()
        })
        .collect();
    let max = values
        .iter()
        .flatten()
        .flatten()
        .filter_map(|c| ratio(c))
        .fold(1.0, f64::max);
    let top = max.min(CAP) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 22))
        .margin(12)
        .margin_right(24)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(8)
        .y_label_formatter(&|y| format!("{y:.1}"))
        .y_desc(y_desc)
        .x_desc("workload")
        .axis_desc_style((FONT, 17))
        .label_style((FONT, 15))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    let slot = 0.8 / k as f64;
    let small = |v: VPos| TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, v));
    for (i, row) in values.iter().enumerate() {
        for (j, cell) in row.iter().enumerate() {
            let x0 = i as f64 - 0.4 + j as f64 * slot;
            let mid = x0 + slot / 2.0;
            let colour = COLOURS[j % COLOURS.len()];
            match cell.map(|c| (c.failed, ratio(c))) {
                Some((false, Some(v))) => {
                    let bar = [(x0 + 0.08 * slot, 0.0), (x0 + 0.92 * slot, v.min(CAP))];
                    chart.draw_series(std::iter::once(Rectangle::new(bar, colour.filled())))?;
                    if v > CAP {
                        let label = Text::new(format!("{v:.1}"), (mid, CAP), small(VPos::Bottom));
                        chart.draw_series(std::iter::once(label))?;
                    }
                }
                Some((true, _)) => {
                    let style = TextStyle::from((FONT, 14).into_font())
                        .pos(Pos::new(HPos::Center, VPos::Bottom));
                    let mark = Text::new("FAILED", (mid, 0.0), style.color(&RED));
                    chart.draw_series(std::iter::once(mark))?;
                }
                _ => {}
            }
        }
    }
    let one = PathElement::new(
        vec![(-0.5, 1.0), (n as f64 - 0.5, 1.0)],
        BLACK.stroke_width(1),
    );
    chart.draw_series(std::iter::once(one))?;
    // Workload names centred under their groups (pixel positions from the
    // chart, relative to this panel).
    let (bx, by) = area.get_base_pixel();
    let style = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, w) in r.workloads.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64, 0.0));
        area.draw(&Text::new(
            w.name.clone(),
            (px - bx, py - by + 8),
            style.clone(),
        ))?;
    }
    Ok(())
}
