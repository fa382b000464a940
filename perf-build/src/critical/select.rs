//! Whether a selector, as lightningcss parsed it, can match an element the template
//! produces. The walk is the selector engine's (right to left over compound selectors
//! and combinators, with backtracking over ancestors and siblings), on lightningcss's own
//! `Selector`/`Component` structures; the answers are the template's, so they are
//! conservative: whatever the source cannot settle (state pseudo-classes, `:not()`,
//! positions in a loop, expressions) counts as a match. Keeping a rule too many costs
//! bytes; dropping one that applies costs a flash of unstyled content.

use lightningcss::selector::{Combinator, Component, Selector};
use parcel_selectors::attr::AttrSelectorOperator;

use super::markup::{Pattern, Tree};

/// What counts as present whatever the template shows: class names, ids (`#id`) or tag
/// names, each with `*` standing for any text (`mood-*`).
#[derive(Debug, Clone, Default)]
pub struct Safelist {
    classes: Vec<Pattern>,
    ids: Vec<Pattern>,
    tags: Vec<String>,
}

impl Safelist {
    /// Reads entries such as `is-open`, `.is-open`, `mood-*`, `#menu`, `dialog`.
    pub fn new(entries: &[String]) -> Self {
        let mut s = Safelist::default();
        // What the ImageOptimizer adds to a picture once it has loaded.
        s.classes.push(Pattern::lit("perf-loaded"));
        let glob = |t: &str| {
            let mut segs = Vec::new();
            for (i, part) in t.split('*').enumerate() {
                if i > 0 {
                    segs.push(super::markup::Seg::Any(usize::MAX));
                }
                if !part.is_empty() {
                    segs.push(super::markup::Seg::Lit(part.to_string()));
                }
            }
            Pattern(segs)
        };
        for e in entries {
            let e = e.trim();
            if let Some(id) = e.strip_prefix('#') {
                s.ids.push(glob(id));
            } else if let Some(class) = e.strip_prefix('.') {
                s.classes.push(glob(class));
            } else if e.starts_with(|c: char| c.is_ascii_alphabetic()) && !e.contains(['-', '*']) {
                // A bare word is a class or a tag name.
                s.tags.push(e.to_ascii_lowercase());
                s.classes.push(glob(e));
            } else if !e.is_empty() {
                s.classes.push(glob(e));
            }
        }
        s
    }

    fn class(&self, name: &str) -> bool {
        self.classes.iter().any(|p| p.can_equal(name, false))
    }

    fn id(&self, name: &str) -> bool {
        self.ids.iter().any(|p| p.can_equal(name, false))
    }

    fn tag(&self, name: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(name))
    }
}

/// Matches selectors against a template's elements.
pub struct Matcher<'a> {
    tree: &'a Tree,
    safelist: &'a Safelist,
}

impl<'a> Matcher<'a> {
    /// A matcher over `tree`.
    pub fn new(tree: &'a Tree, safelist: &'a Safelist) -> Self {
        Matcher { tree, safelist }
    }

    /// Whether `selector` can match some element of the template (or a safelisted one).
    /// A safelisted class, id or tag counts as present on every element (each simple
    /// selector is checked on its own: `.a.is-open` still needs an element with `a`).
    pub fn any(&self, selector: &Selector<'_>) -> bool {
        (0..self.tree.elements.len()).any(|e| self.matches(selector, e))
    }

    /// Whether `selector` can match element `e`.
    pub fn matches(&self, selector: &Selector<'_>, e: usize) -> bool {
        let components: Vec<&Component<'_>> = selector.iter_raw_match_order().collect();
        self.from(&components, e)
    }

    /// Matches the compound selector at the start of `rest` (components in match order,
    /// right to left) against `e`, then what lies left of it.
    fn from(&self, rest: &[&Component<'_>], e: usize) -> bool {
        let split = rest
            .iter()
            .position(|c| matches!(c, Component::Combinator(_)))
            .unwrap_or(rest.len());
        if !rest[..split].iter().all(|c| self.simple(c, e)) {
            return false;
        }
        let Some(Component::Combinator(combinator)) = rest.get(split) else {
            return true;
        };
        let left = &rest[split + 1..];
        match combinator {
            // Every parent the branches before it may give it.
            Combinator::Child => self.tree.elements[e]
                .parents()
                .any(|p| p.is_some_and(|p| self.from(left, p))),
            Combinator::Descendant | Combinator::DeepDescendant | Combinator::Deep => self
                .tree
                .ancestors(e)
                .into_iter()
                .any(|a| self.from(left, a)),
            // Branches and loops may put any sibling before any other.
            Combinator::NextSibling | Combinator::LaterSibling => {
                self.tree.siblings(e).any(|s| self.from(left, s))
            }
            // `::before` and the like belong to the element itself.
            Combinator::PseudoElement => self.from(left, e),
            // Shadow trees are not in a template: accept.
            Combinator::SlotAssignment | Combinator::Part => true,
        }
    }

    /// One simple selector against element `e`.
    fn simple(&self, c: &Component<'_>, e: usize) -> bool {
        let el = &self.tree.elements[e];
        match c {
            Component::LocalName(l) => {
                el.tag.eq_ignore_ascii_case(l.lower_name.as_ref())
                    || self.safelist.tag(l.lower_name.as_ref())
            }
            Component::ID(id) => {
                let id: &str = id.as_ref();
                el.ids.iter().any(|p| p.can_equal(id, false)) || self.safelist.id(id)
            }
            Component::Class(class) => {
                let class: &str = class.as_ref();
                el.classes.iter().any(|p| p.can_equal(class, false)) || self.safelist.class(class)
            }
            Component::AttributeInNoNamespaceExists {
                local_name_lower, ..
            } => el.any_attrs || el.attrs.iter().any(|(n, _)| n == local_name_lower.as_ref()),
            Component::AttributeInNoNamespace {
                local_name,
                operator,
                value,
                case_sensitivity,
                never_matches,
            } => {
                if *never_matches {
                    return false;
                }
                let ignore_case = !matches!(
                    case_sensitivity,
                    parcel_selectors::attr::ParsedCaseSensitivity::CaseSensitive
                        | parcel_selectors::attr::ParsedCaseSensitivity::ExplicitCaseSensitive
                );
                let name: &str = local_name.as_ref();
                let value: &str = value.as_ref();
                el.any_attrs
                    || el.attrs.iter().any(|(n, v)| {
                        n == name && attribute(v.as_ref(), *operator, value, ignore_case)
                    })
            }
            Component::AttributeOther(a) => {
                let name: &str = a.local_name_lower.as_ref();
                el.any_attrs || el.attrs.iter().any(|(n, _)| n == name)
            }
            Component::Root => el.parents().any(|p| p.is_none()) || el.tag == "html",
            // `:is()`, `:where()`, `:-webkit-any()`: one of the list.
            Component::Is(list) | Component::Where(list) | Component::Any(_, list) => {
                list.iter().any(|s| self.matches(s, e))
            }
            Component::NthOf(nth) => nth.selectors().iter().any(|s| self.matches(s, e)),
            Component::Slotted(s) => self.matches(s, e),
            Component::Host(Some(s)) => self.matches(s, e),
            // `:not()` holds for some branch of a condition, `:has()` for some content an
            // expression writes, states for some moment, positions for some loop pass.
            Component::Negation(_)
            | Component::Has(_)
            | Component::NonTSPseudoClass(_)
            | Component::Nth(_)
            | Component::Empty
            | Component::Scope
            | Component::Host(None)
            | Component::Part(_)
            | Component::PseudoElement(_)
            | Component::Nesting
            | Component::ExplicitUniversalType
            | Component::ExplicitAnyNamespace
            | Component::ExplicitNoNamespace
            | Component::DefaultNamespace(_)
            | Component::Namespace(..)
            | Component::Combinator(_) => true,
        }
    }
}

/// Whether an attribute written as `written` (`None`: no value) can satisfy
/// `[name <operator> value]`.
fn attribute(
    written: Option<&Pattern>,
    operator: AttrSelectorOperator,
    value: &str,
    ignore_case: bool,
) -> bool {
    let Some(p) = written else {
        // A bare attribute's value is the empty string.
        return matches!(operator, AttrSelectorOperator::Equal) && value.is_empty();
    };
    let Some(text) = p.literal() else {
        // Part of the value comes from an expression.
        return match operator {
            AttrSelectorOperator::Equal => p.can_equal(value, ignore_case),
            _ => true,
        };
    };
    let (t, v) = if ignore_case {
        (text.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (text.to_string(), value.to_string())
    };
    match operator {
        AttrSelectorOperator::Equal => t == v,
        AttrSelectorOperator::Includes => t.split_ascii_whitespace().any(|w| w == v),
        AttrSelectorOperator::DashMatch => t == v || t.starts_with(&format!("{v}-")),
        AttrSelectorOperator::Prefix => !v.is_empty() && t.starts_with(&v),
        AttrSelectorOperator::Substring => !v.is_empty() && t.contains(&v),
        AttrSelectorOperator::Suffix => !v.is_empty() && t.ends_with(&v),
    }
}
