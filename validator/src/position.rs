//! The position tree: the line and column of every node of a document, kept beside its JSON value.
//!
//! The gate validates `serde_json::Value`s (what the API server sees) and reports at positions (what
//! a person edits). [`PosNode`] mirrors the value's shape so any JSON pointer, whether from a schema
//! error or a policy, maps back to the exact key or value in the source.

use crate::finding::Pos;

/// The position of one node and, for collections, of its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PosNode {
    /// A scalar (or an alias, or an empty value) at this position.
    Scalar(Pos),
    /// A mapping: its own start and, per key in source order, the key's and the value's positions.
    Map {
        /// Where the mapping starts.
        pos: Pos,
        /// The entries, in source order.
        entries: Vec<MapEntry>,
    },
    /// A sequence: its own start and each item's position.
    Seq {
        /// Where the sequence starts.
        pos: Pos,
        /// The items, in order.
        items: Vec<PosNode>,
    },
}

/// One key of a mapping with its position and its value's positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    /// The key as the JSON value has it.
    pub key: Box<str>,
    /// Where the key is written.
    pub key_pos: Pos,
    /// The value's positions.
    pub value: PosNode,
}

/// Where a JSON pointer landed in a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// The value's position (or the deepest existing ancestor's, when `exact` is false).
    pub value: Pos,
    /// The key's position when the last segment named a mapping key that exists.
    pub key: Option<Pos>,
    /// Whether every segment of the pointer was found.
    pub exact: bool,
}

impl Located {
    /// The best place to point a person at: the key when there is one, else the value.
    pub fn best(&self) -> Pos {
        self.key.unwrap_or(self.value)
    }
}

impl PosNode {
    /// This node's own position.
    pub fn pos(&self) -> Pos {
        match self {
            PosNode::Scalar(pos) | PosNode::Map { pos, .. } | PosNode::Seq { pos, .. } => *pos,
        }
    }

    /// The entry for `key` when this is a mapping that has it.
    pub fn entry(&self, key: &str) -> Option<&MapEntry> {
        match self {
            PosNode::Map { entries, .. } => entries.iter().rev().find(|e| &*e.key == key),
            _ => None,
        }
    }

    /// The child at one pointer segment: a mapping key or a sequence index.
    pub fn child(&self, segment: &str) -> Option<&PosNode> {
        match self {
            PosNode::Map { .. } => self.entry(segment).map(|e| &e.value),
            PosNode::Seq { items, .. } => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            PosNode::Scalar(_) => None,
        }
    }

    /// Follows a JSON pointer (`/spec/containers/0/image`, RFC 6901 escapes) as far as it goes.
    pub fn locate(&self, pointer: &str) -> Located {
        self.locate_segments(pointer.split('/').skip(1).map(unescape_segment))
    }

    /// Follows path segments (already unescaped) as far as they go.
    pub fn locate_segments<I, S>(&self, segments: I) -> Located
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut node = self;
        let mut key = None;
        for segment in segments {
            let segment = segment.as_ref();
            let next = match node {
                PosNode::Map { .. } => node.entry(segment).map(|e| {
                    key = Some(e.key_pos);
                    &e.value
                }),
                _ => {
                    key = None;
                    node.child(segment)
                }
            };
            match next {
                Some(n) => node = n,
                None => {
                    return Located {
                        value: node.pos(),
                        key: None,
                        exact: false,
                    };
                }
            }
        }
        Located {
            value: node.pos(),
            key,
            exact: true,
        }
    }
}

/// Undoes RFC 6901 escaping of one pointer segment (`~1` is `/`, `~0` is `~`).
pub fn unescape_segment(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('~') {
        std::borrow::Cow::Owned(s.replace("~1", "/").replace("~0", "~"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Escapes one segment for a JSON pointer.
pub fn escape_segment(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['~', '/']) {
        std::borrow::Cow::Owned(s.replace('~', "~0").replace('/', "~1"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> PosNode {
        PosNode::Map {
            pos: Pos::new(1, 1),
            entries: vec![MapEntry {
                key: "spec".into(),
                key_pos: Pos::new(2, 1),
                value: PosNode::Seq {
                    pos: Pos::new(3, 3),
                    items: vec![PosNode::Scalar(Pos::new(3, 5))],
                },
            }],
        }
    }

    #[test]
    fn locates_keys_values_and_ancestors() {
        let t = tree();
        let l = t.locate("/spec");
        assert_eq!(
            (l.key, l.value, l.exact),
            (Some(Pos::new(2, 1)), Pos::new(3, 3), true)
        );
        let l = t.locate("/spec/0");
        assert_eq!((l.best(), l.exact), (Pos::new(3, 5), true));
        let l = t.locate("/spec/7/name");
        assert_eq!((l.value, l.exact), (Pos::new(3, 3), false));
        assert_eq!(t.locate("").value, Pos::new(1, 1));
    }

    #[test]
    fn pointer_escapes_round_trip() {
        assert_eq!(escape_segment("a/b~c"), "a~1b~0c");
        assert_eq!(unescape_segment("a~1b~0c"), "a/b~c");
    }
}
