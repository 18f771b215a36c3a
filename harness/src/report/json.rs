//! The run report as pretty JSON: the machine-readable form, with the same field names
//! as the model.

use crate::model::RunReport;

/// Pretty JSON of the whole report, ending in a newline.
pub fn render(report: &RunReport) -> serde_json::Result<String> {
    let mut out = serde_json::to_string_pretty(report)?;
    out.push('\n');
    Ok(out)
}
