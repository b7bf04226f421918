//! A run's training curves from its `log.jsonl` (`lifted plot RUN_DIR`), drawn as one SVG with
//! three panels: the loss per step with its epoch means, the learning rate, and the evaluation
//! metrics per epoch.

use std::path::Path;

use plotters::prelude::*;

use super::PlotError;
use super::palette::class_colour;
use crate::eval::EvalReport;
use crate::runlog::LogRecord;

/// The series read from a log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curves {
    /// (global step, loss) of every step.
    pub loss: Vec<(f64, f64)>,
    /// (global step, learning rate) of every step.
    pub learning_rate: Vec<(f64, f64)>,
    /// (global step at its end, mean loss) of every epoch.
    pub epoch_loss: Vec<(f64, f64)>,
    /// Evaluation metrics by name, each a list of (epochs trained, value).
    pub metrics: Vec<(String, Vec<(f64, f64)>)>,
    /// Lines that were not JSON objects (a run killed mid-line leaves one at the end).
    pub unreadable_lines: usize,
}

/// Reads the curves of the run in `run` (its `log.jsonl`).
///
/// # Errors
/// [`PlotError::Io`] when `log.jsonl` cannot be read as text; [`PlotError::EmptyLog`] when it holds
/// no step and no evaluation.
pub fn read_run(run: &Path) -> Result<Curves, PlotError> {
    let path = run.join("log.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|source| PlotError::Io {
        path: path.clone(),
        source,
    })?;
    let curves = parse_log(&text);
    if curves.loss.is_empty() && curves.metrics.is_empty() {
        return Err(PlotError::EmptyLog(path));
    }
    Ok(curves)
}

/// Parses the lines of a `log.jsonl`.
pub fn parse_log(text: &str) -> Curves {
    let mut curves = Curves::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(record) = serde_json::from_str::<LogRecord>(line) else {
            curves.unreadable_lines += 1;
            continue;
        };
        match record {
            LogRecord::Step {
                global_step,
                loss,
                lr,
                ..
            } => {
                let step = global_step as f64;
                curves.loss.push((step, loss));
                curves.learning_rate.push((step, lr));
            }
            LogRecord::Epoch {
                global_step,
                mean_loss,
                ..
            } => curves.epoch_loss.push((global_step as f64, mean_loss)),
            LogRecord::Eval { epoch, report, .. } => {
                for (name, value) in eval_metrics(&report) {
                    add_point(&mut curves.metrics, name, (epoch as f64, value));
                }
            }
        }
    }
    curves
}

/// The plotted metrics of one evaluation report, by display name.
fn eval_metrics(report: &EvalReport) -> Vec<(String, f64)> {
    let retrieval = &report.retrieval;
    let mut out: Vec<(String, f64)> = retrieval
        .recall_at
        .iter()
        .map(|&(k, v)| (format!("R@{k}"), v))
        .collect();
    out.push(("MAP@R".to_string(), retrieval.map_at_r));
    if let Some(c) = &report.clustering {
        out.push(("NMI".to_string(), c.nmi.mean));
        out.push(("F1".to_string(), c.f1.mean));
    }
    out
}

fn add_point(series: &mut Vec<(String, Vec<(f64, f64)>)>, name: String, point: (f64, f64)) {
    match series.iter_mut().find(|(n, _)| *n == name) {
        Some((_, points)) => points.push(point),
        None => series.push((name, vec![point])),
    }
}

/// Draws `curves` as an SVG of `width` × `height` pixels at `path`, titled `title`.
///
/// # Errors
/// [`PlotError::Draw`] when drawing fails or the SVG cannot be written to `path`.
pub fn write_svg(
    curves: &Curves,
    title: &str,
    (width, height): (u32, u32),
    path: &Path,
) -> Result<(), PlotError> {
    let draw_error = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_error(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| draw_error(&e))?;
    let panels = root.split_evenly((3, 1));
    let loss_lines = [
        ("loss per step", &curves.loss, RGBColor(150, 170, 210)),
        ("epoch mean", &curves.epoch_loss, RGBColor(20, 60, 170)),
    ];
    panel(
        &panels[0],
        "loss",
        "step",
        &loss_lines,
        SeriesLabelPosition::UpperRight,
    )
    .map_err(|e| draw_error(&e))?;
    let lr_lines = [(
        "learning rate",
        &curves.learning_rate,
        RGBColor(200, 100, 20),
    )];
    panel(
        &panels[1],
        "learning rate",
        "step",
        &lr_lines,
        SeriesLabelPosition::UpperRight,
    )
    .map_err(|e| draw_error(&e))?;
    let metric_lines: Vec<_> = curves
        .metrics
        .iter()
        .enumerate()
        .map(|(i, (name, points))| {
            let [r, g, b] = class_colour(i);
            (name.as_str(), points, RGBColor(r, g, b))
        })
        .collect();
    panel(
        &panels[2],
        "test metrics",
        "epoch",
        &metric_lines,
        SeriesLabelPosition::LowerRight,
    )
    .map_err(|e| draw_error(&e))?;
    root.present().map_err(|e| draw_error(&e))
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// A named series of (x, y) points and its colour.
type Line<'a> = (&'a str, &'a Vec<(f64, f64)>, RGBColor);

/// One panel: the named series as lines (with markers when sparse), with a legend.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    x_label: &str,
    lines: &[Line<'_>],
    legend: SeriesLabelPosition,
) -> DrawResult {
    let all = || lines.iter().flat_map(|(_, points, _)| points.iter());
    if all().next().is_none() {
        return Ok(());
    }
    let range = |pick: fn(&(f64, f64)) -> f64| {
        let (lo, hi) = all()
            .map(pick)
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        // A constant series (a fixed learning rate) still gets a readable band.
        let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.05).max(1e-9);
        (lo - pad)..(hi + pad)
    };
    let y_range = range(|p| p.1);
    let small = y_range.end.abs().max(y_range.start.abs()) < 0.01;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(range(|p| p.0), y_range)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| {
            if small {
                format!("{v:.2e}")
            } else {
                format!("{v:.3}")
            }
        })
        .draw()?;
    for &(name, points, colour) in lines {
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
        if points.len() <= 60 {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(legend)
        .draw()
}
