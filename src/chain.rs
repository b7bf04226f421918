//! An error and its causes as one line of text, for records that keep text (a source's
//! failure in a download report, a rejected image in `index.json`).

/// `error` and its sources, joined with `: ` (a cause already in the text is not repeated).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}
