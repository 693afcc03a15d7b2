//! The cost of a GraphQL document, measured before validation. Validation (and async-graphql's own
//! depth check) expands every fragment spread again, so a document whose fragments spread each
//! other twice per level grows exponentially there: `measure` counts the expanded size with one
//! memoised pass over the fragments, in time linear in the document, so such a document is refused
//! before anything expands it. The same pass refuses NUL characters in string arguments (the two
//! databases disagree about them) and counts password-hashing fields (each costs an argon2 run).
use std::collections::HashMap;

use async_graphql::{
    Name, Positioned, Value, Variables,
    parser::types::{Directive, ExecutableDocument, Field, Selection, SelectionSet},
};
use async_graphql_value::Value as ArgValue;

/// Root fields that run argon2 (tens of milliseconds of CPU and 19 MiB each).
const PASSWORD_FIELDS: &[&str] = &["login", "register", "changePassword"];

/// What running a document would cost, with every fragment spread expanded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Selections (fields, spreads, inline fragments) after expansion, over all operations.
    pub nodes: u64,
    /// Password-hashing fields after expansion.
    pub password_fields: u64,
}

impl Cost {
    fn add(self, other: Cost) -> Cost {
        Cost {
            nodes: self.nodes.saturating_add(other.nodes),
            password_fields: self.password_fields.saturating_add(other.password_fields),
        }
    }
}

/// Why a document is refused before validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Fragments spread each other in a cycle.
    FragmentCycle(String),
    /// A string argument or variable contains U+0000.
    NulCharacter(String),
}

impl Refusal {
    /// The message shown to the client.
    pub fn message(&self) -> String {
        match self {
            Self::FragmentCycle(name) => format!("fragment `{name}` spreads itself"),
            Self::NulCharacter(place) => {
                format!("text must not contain NUL characters (U+0000): {place}")
            }
        }
    }
}

/// A selection set's own cost (spreads counted as one node each) and the fragments it spreads.
#[derive(Default)]
struct Local {
    cost: Cost,
    spreads: Vec<Name>,
}

/// The expanded cost of every operation of `doc`, summed; refuses cycles and NUL characters.
/// Linear in the size of the document: each fragment's expanded cost is computed once.
pub fn measure(doc: &ExecutableDocument) -> Result<Cost, Refusal> {
    let mut locals: HashMap<&Name, Local> = HashMap::new();
    for (name, fragment) in &doc.fragments {
        let mut local = Local::default();
        walk(&fragment.node.selection_set, &mut local)?;
        check_directives(&fragment.node.directives)?;
        locals.insert(name, local);
    }
    let totals = expand_fragments(&locals)?;
    let mut cost = Cost::default();
    for (_, operation) in doc.operations.iter() {
        let mut local = Local::default();
        walk(&operation.node.selection_set, &mut local)?;
        check_directives(&operation.node.directives)?;
        for variable in &operation.node.variable_definitions {
            if let Some(default) = &variable.node.default_value {
                check_value(&default.node, "a variable default")?;
            }
        }
        cost = cost.add(local.cost);
        for spread in &local.spreads {
            // An unknown fragment costs nothing here; validation reports it.
            cost = cost.add(totals.get(spread).copied().unwrap_or_default());
        }
    }
    Ok(cost)
}

/// Expanded cost of each fragment, with an explicit stack: a chain of thousands of fragments must
/// not recurse thousands of frames deep.
fn expand_fragments<'a>(
    locals: &HashMap<&'a Name, Local>,
) -> Result<HashMap<&'a Name, Cost>, Refusal> {
    let mut totals: HashMap<&Name, Cost> = HashMap::with_capacity(locals.len());
    let mut visiting: HashMap<&Name, ()> = HashMap::new();
    for &start in locals.keys() {
        if totals.contains_key(start) {
            continue;
        }
        // (fragment, index of the next spread to resolve)
        let mut stack: Vec<(&Name, usize)> = vec![(start, 0)];
        visiting.insert(start, ());
        while let Some((name, next)) = stack.pop() {
            let local = &locals[name];
            match local.spreads.get(next) {
                Some(child) => {
                    stack.push((name, next + 1));
                    let Some((&child, _)) = locals.get_key_value(child) else {
                        continue;
                    };
                    if totals.contains_key(child) {
                        continue;
                    }
                    if visiting.insert(child, ()).is_some() {
                        return Err(Refusal::FragmentCycle(child.to_string()));
                    }
                    stack.push((child, 0));
                }
                None => {
                    let total = local.spreads.iter().fold(local.cost, |sum, child| {
                        sum.add(totals.get(child).copied().unwrap_or_default())
                    });
                    visiting.remove(name);
                    totals.insert(name, total);
                }
            }
        }
    }
    Ok(totals)
}

/// Counts a selection set's own nodes and collects its spreads (nesting is bounded by the parser).
fn walk(set: &Positioned<SelectionSet>, local: &mut Local) -> Result<(), Refusal> {
    for selection in &set.node.items {
        local.cost.nodes = local.cost.nodes.saturating_add(1);
        match &selection.node {
            Selection::Field(field) => {
                check_field(&field.node)?;
                if PASSWORD_FIELDS.contains(&field.node.name.node.as_str()) {
                    local.cost.password_fields += 1;
                }
                walk(&field.node.selection_set, local)?;
            }
            Selection::FragmentSpread(spread) => {
                check_directives(&spread.node.directives)?;
                local.spreads.push(spread.node.fragment_name.node.clone());
            }
            Selection::InlineFragment(inline) => {
                check_directives(&inline.node.directives)?;
                walk(&inline.node.selection_set, local)?;
            }
        }
    }
    Ok(())
}

fn check_field(field: &Field) -> Result<(), Refusal> {
    check_arguments(&field.arguments)?;
    check_directives(&field.directives)
}

fn check_directives(directives: &[Positioned<Directive>]) -> Result<(), Refusal> {
    directives
        .iter()
        .try_for_each(|directive| check_arguments(&directive.node.arguments))
}

/// Literal arguments; variables inside them are checked with the variables.
fn check_arguments(arguments: &[(Positioned<Name>, Positioned<ArgValue>)]) -> Result<(), Refusal> {
    for (name, value) in arguments {
        let literal = value
            .node
            .clone()
            .into_const_with(|_| Ok::<_, std::convert::Infallible>(Value::Null))
            .unwrap_or(Value::Null);
        check_value(&literal, &format!("argument `{}`", name.node))?;
    }
    Ok(())
}

/// Refuses U+0000 anywhere in a value (strings, lists, objects).
pub fn check_value(value: &Value, place: &str) -> Result<(), Refusal> {
    match value {
        Value::String(text) if text.contains('\0') => Err(Refusal::NulCharacter(place.to_string())),
        Value::List(items) => items.iter().try_for_each(|item| check_value(item, place)),
        Value::Object(fields) => fields
            .values()
            .try_for_each(|item| check_value(item, place)),
        _ => Ok(()),
    }
}

/// Refuses U+0000 in any variable.
pub fn check_variables(variables: &Variables) -> Result<(), Refusal> {
    variables
        .iter()
        .try_for_each(|(name, value)| check_value(value, &format!("variable `${name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(query: &str) -> Result<Cost, Refusal> {
        measure(&async_graphql::parser::parse_query(query).expect("parses"))
    }

    fn bomb(levels: usize) -> String {
        let mut query = String::from("query { ...F0 } fragment F0 on Query { me { id } }");
        for level in 1..=levels {
            query.push_str(&format!(
                " fragment F{level} on Query {{ ...F{} ...F{} }}",
                level - 1,
                level - 1
            ));
        }
        query.replace("query { ...F0 }", &format!("query {{ ...F{levels} }}"))
    }

    #[test]
    fn counts_fields_spreads_and_inline_fragments() {
        let found = cost("{ me { id username } ... on Query { me { id } } }").unwrap();
        assert_eq!(found.nodes, 6);
        assert_eq!(found.password_fields, 0);
    }

    #[test]
    fn expands_fragments_once_each_but_counts_every_spread() {
        // F1 = 2 spreads + 2 × F0 (me, id = 2) = 6; the query adds its own spread: 7.
        let found = cost(
            "{ ...F1 } fragment F1 on Query { ...F0 ...F0 } fragment F0 on Query { me { id } }",
        )
        .unwrap();
        assert_eq!(found.nodes, 7);
    }

    #[test]
    fn a_fragment_bomb_is_measured_not_expanded() {
        let found = cost(&bomb(60)).unwrap();
        assert!(found.nodes > 1u64 << 60, "{found:?}");
        // Far past any budget, and saturating rather than overflowing.
        assert!(cost(&bomb(200)).unwrap().nodes >= u64::MAX / 2);
    }

    #[test]
    fn a_long_fragment_chain_does_not_recurse() {
        let mut query = String::from("{ ...F0 } fragment F5000 on Query { me { id } }");
        for i in 0..5000 {
            query.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i + 1));
        }
        assert_eq!(cost(&query).unwrap().nodes, 5001 + 2);
    }

    #[test]
    fn cycles_are_refused() {
        let found = cost("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }");
        assert!(matches!(found, Err(Refusal::FragmentCycle(_))));
    }

    #[test]
    fn password_fields_are_counted_through_aliases_and_fragments() {
        let found = cost(
            "mutation { a: login(input: {login: \"x\", password: \"y\"}) { accessToken } ...R } \
             fragment R on Mutation { b: register(input: {username: \"u\", email: \"e\", password: \"p\"}) { accessToken } }",
        )
        .unwrap();
        assert_eq!(found.password_fields, 2);
    }

    #[test]
    fn nul_characters_are_refused_in_arguments_and_variables() {
        assert!(matches!(
            cost(r#"{ users(search: "a\u0000b") { nodes { id } } }"#),
            Err(Refusal::NulCharacter(_))
        ));
        assert!(matches!(
            cost(r#"{ users(filter: {deep: ["ok", "no\u0000"]}) { id } }"#),
            Err(Refusal::NulCharacter(_))
        ));
        let variables = Variables::from_json(serde_json::json!({"input": {"content": "x\u{0}"}}));
        assert!(check_variables(&variables).is_err());
        let clean = Variables::from_json(serde_json::json!({"input": {"content": "سلام"}}));
        assert!(check_variables(&clean).is_ok());
    }
}
