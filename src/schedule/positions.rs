//! Where each node of a YAML document sits in its file, so that errors found after typed
//! deserialization (overlaps, duplicates, bad times) can still point at the line that caused them.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Positions of every node by path: `days.mon.grades.1[0].media`.
#[derive(Debug, Default)]
pub struct Positions {
    nodes: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Positions {
    /// Index a document. Syntax errors are not reported here: serde_yaml reports them with
    /// positions of its own, so an unparsable document simply yields an empty index.
    pub fn index(text: &str) -> Positions {
        let mut rx = Receiver::default();
        let _ = Parser::new_from_str(text).load(&mut rx, false);
        Positions {
            nodes: rx.nodes,
            keys: rx.keys,
        }
    }

    /// The position of the key of the mapping entry at `path` (falls back to its value).
    pub fn key_at(&self, path: &str) -> Pos {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.at(path))
    }

    /// The position of the node at `path`, or of its nearest indexed ancestor.
    pub fn at(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.nodes.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return Pos { line: 1, col: 1 },
            }
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Receiver {
    stack: Vec<Frame>,
    nodes: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Receiver {
    /// Called for every node start. Returns the node's path if it is a value, None if it is a key.
    fn node(&mut self, mark: Marker, key_text: Option<&str>) -> Option<String> {
        let pos = Pos {
            line: mark.line(),
            col: mark.col() + 1,
        };
        let path = match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    let k = key_text.unwrap_or("?").to_string();
                    let full = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    self.keys.entry(full).or_insert(pos);
                    *key = Some(k);
                    return None;
                }
                Some(k) => {
                    if path.is_empty() {
                        k
                    } else {
                        format!("{path}.{k}")
                    }
                }
            },
            Some(Frame::Seq { path, index }) => {
                *index += 1;
                format!("{path}[{}]", *index - 1)
            }
        };
        self.nodes.entry(path.clone()).or_insert(pos);
        Some(path)
    }
}

impl MarkedEventReceiver for Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => {
                self.node(mark, Some(&text));
            }
            Event::Alias(_) => {
                self.node(mark, None);
            }
            Event::MappingStart(..) => {
                // A mapping used as a key (rare) still needs a frame to keep the stack balanced.
                let path = self.node(mark, None).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.node(mark, None).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_point_at_values() {
        let doc = "week: 2020-W08\ndays:\n  mon:\n    grades:\n      1:\n        - id: a\n          media: x.mp4\n";
        let p = Positions::index(doc);
        assert_eq!(p.at("week"), Pos { line: 1, col: 7 });
        assert_eq!(p.at("days.mon.grades.1[0]").line, 6);
        assert_eq!(p.at("days.mon.grades.1[0].media"), Pos { line: 7, col: 18 });
        assert_eq!(
            p.at("days.mon.grades.1[0].nothing"),
            p.at("days.mon.grades.1[0]")
        );
        assert_eq!(p.key_at("days.mon.grades.1"), Pos { line: 5, col: 7 });
    }
}
