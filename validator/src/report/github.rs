//! `--format github`: GitHub Actions workflow commands, which the runner turns into annotations
//! on the pull request's lines (`::error file=F,line=L,col=C,title=RULE::message`).
//!
//! Exempted findings are not annotated: an annotation asks for a change, and they ask for none.

use std::io::{self, Write};

use crate::finding::{Finding, Severity};
use crate::gate::GateReport;
use crate::source::STDIN_NAME;
use crate::text;

/// Writes one workflow command per counted finding.
pub fn write(report: &GateReport, out: &mut dyn Write) -> io::Result<()> {
    for f in report.findings.iter().filter(|f| f.exempted.is_none()) {
        writeln!(out, "{}", command(f))?;
    }
    Ok(())
}

fn command(f: &Finding) -> String {
    let name = match f.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "notice",
    };
    // Text quoted from input is escaped first (no control character or bidi override reaches
    // the log); the workflow-command escapes below then keep it inside its command.
    let mut message = text::escape(&f.message).into_owned();
    if let Some(help) = &f.help {
        message.push_str("\nhelp: ");
        message.push_str(&text::escape(help));
    }
    let file = text::escape(&f.file);
    let line = f.pos.line.max(1);
    let column = f.pos.column.max(1);
    if &*f.file == STDIN_NAME {
        // Stdin is no file in the repository: a plain annotation that says where it is.
        return format!(
            "::{name} title={}::{}",
            property(f.rule),
            data(&format!("{file}:{line}:{column}: {message}"))
        );
    }
    format!(
        "::{name} file={},line={line},col={column},title={}::{}",
        property(&file),
        property(f.rule),
        data(&message)
    )
}

/// Escapes a command's message (after `::`), as GitHub's runner reads it: `%`, `\r`, `\n`.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command's property value (`file=...`), which also ends at `:` and `,`: those as
/// well.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(data("100% done\r\nnext: a,b"), "100%25 done%0D%0Anext: a,b");
        assert_eq!(property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }
}
