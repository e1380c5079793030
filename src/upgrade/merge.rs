//! The three-way merge of one user-owned file: the user's changes since the old template
//! and the new template's changes, with git-style conflict markers where both touched
//! the same lines.

use std::fmt::Write as _;

/// Who each side of a conflict is, as its marker line says.
#[derive(Debug, Clone)]
pub struct Labels {
    /// The file on disk (`<<<<<<<`).
    pub ours: String,
    /// The old template's text (`|||||||`).
    pub base: String,
    /// The new template's text (`>>>>>>>`).
    pub theirs: String,
}

impl Labels {
    /// Markers for an upgrade from template version `from` to `to`.
    pub fn upgrade(from: u32, to: u32) -> Self {
        Self {
            ours: "yours".into(),
            base: format!("template version {from}"),
            theirs: format!("template version {to}"),
        }
    }
}

/// A merged text and the 1-based line of each conflict's `<<<<<<<` marker in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub text: String,
    pub conflicts: Vec<usize>,
}

/// Merges the changes from `base` to `theirs` into `ours`.
pub fn merge(base: &str, ours: &str, theirs: &str, labels: &Labels) -> Merged {
    let clean = |text: &str| Merged {
        text: text.to_string(),
        conflicts: Vec::new(),
    };
    if ours == theirs || base == theirs {
        return clean(ours);
    }
    if base == ours {
        return clean(theirs);
    }
    let mut options = diffy::MergeOptions::new();
    options
        .set_conflict_style(diffy::ConflictStyle::Diff3)
        .set_incomplete_hunk_style(diffy::IncompleteHunkStyle::Git);
    match options.merge(base, ours, theirs) {
        Ok(text) => clean(&text),
        Err(text) => relabel(&text, labels),
    }
}

/// diffy names the sides `ours`, `original` and `theirs`; the user is told which is theirs
/// and which template is which.
fn relabel(text: &str, labels: &Labels) -> Merged {
    let marker = |c: char| c.to_string().repeat(7);
    let (open, middle, close) = (marker('<'), marker('|'), marker('>'));
    let mut out = String::with_capacity(text.len());
    let mut conflicts = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches('\n');
        let end = &line[body.len()..];
        if body == format!("{open} ours") {
            conflicts.push(n + 1);
            let _ = write!(out, "{open} {}{end}", labels.ours);
        } else if body == format!("{middle} original") {
            let _ = write!(out, "{middle} {}{end}", labels.base);
        } else if body == format!("{close} theirs") {
            let _ = write!(out, "{close} {}{end}", labels.theirs);
        } else {
            out.push_str(line);
        }
    }
    Merged {
        text: out,
        conflicts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels::upgrade(1, 2)
    }

    #[test]
    fn a_user_edit_and_a_template_change_apart_merge_cleanly() {
        let base = "a\nb\nc\nd\ne\n";
        let ours = "a\nmine\nc\nd\ne\n";
        let theirs = "a\nb\nc\nd\nnew\n";
        let m = merge(base, ours, theirs, &labels());
        assert_eq!(m.text, "a\nmine\nc\nd\nnew\n");
        assert!(m.conflicts.is_empty());
    }

    #[test]
    fn both_changing_a_line_is_a_labelled_conflict_at_its_line() {
        let base = "one\ntwo\nthree\n";
        let ours = "one\nmine\nthree\n";
        let theirs = "one\nnew\nthree\n";
        let m = merge(base, ours, theirs, &labels());
        assert_eq!(
            m.text,
            "one\n<<<<<<< yours\nmine\n||||||| template version 1\ntwo\n=======\nnew\n>>>>>>> template version 2\nthree\n"
        );
        assert_eq!(m.conflicts, [2]);
    }

    #[test]
    fn a_file_without_a_final_newline_keeps_markers_on_their_own_lines() {
        let m = merge("x", "mine", "new", &labels());
        assert!(
            m.text.contains("mine\n||||||| template version 1\n"),
            "{}",
            m.text
        );
        assert!(
            m.text.ends_with(">>>>>>> template version 2\n"),
            "{}",
            m.text
        );
        assert_eq!(m.conflicts, [1]);
    }

    #[test]
    fn an_empty_base_conflicts_unless_both_sides_agree() {
        assert!(
            merge("", "same\n", "same\n", &labels())
                .conflicts
                .is_empty()
        );
        let m = merge("", "mine\n", "new\n", &labels());
        assert_eq!(m.conflicts, [1]);
        assert!(m.text.contains("mine\n") && m.text.contains("new\n"));
    }
}
